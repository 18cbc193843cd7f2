"""The `main()` every node executable shares: init, spin, clean shutdown."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import rclpy
import rclpy.logging
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


class ConfigurationError(ValueError):
    """A node cannot start with what it was given (a parameter, a layout): the message says what to set and
    where; :func:`run_node` logs it and exits with status 2 instead of a traceback."""


#: ``MTWIN_EXECUTOR=single`` selects rclpy's Python SingleThreadedExecutor instead of the default.
EXECUTOR_ENV = "MTWIN_EXECUTOR"


def make_executor(context=None) -> Executor:
    """rclpy's EventsExecutor (C++, event-driven) unless ``MTWIN_EXECUTOR=single``.

    The Python SingleThreadedExecutor rebuilds a wait set and inspects every callback's signature on
    each wake-up; on a twin node taking a hundred messages a second that bookkeeping cost more CPU
    than the tracking itself (py-spy, local_twin in the demo). The events executor runs the same
    callbacks in the same single thread, in arrival order.
    """
    choice = os.environ.get(EXECUTOR_ENV, "events").strip().lower()
    if choice == "single":
        return SingleThreadedExecutor(context=context)
    if choice != "events":
        raise ValueError(f"{EXECUTOR_ENV}={choice!r}: expected 'events' or 'single'")
    from rclpy.experimental import EventsExecutor

    return EventsExecutor(context=context)


#: rclpy errors in a row after which a node gives up (its launch file respawns it)
MAX_EXECUTOR_FAILURES = 50


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Create the node with ``factory`` and spin it until Ctrl-C, external shutdown, or the node asks to stop.

    The process keeps freed heap memory for reuse (:mod:`mobility_twin_core.allocator`; environment variable
    ``MTWIN_KEEP_FREED_MB``, default 512, 0 for the C library's defaults).

    On a host set up by ``mtwin security init`` (``MTWIN_TLS_HOST_DIR`` set) the process first claims its
    TLS profile; a host folder that cannot be used is fatal (exit 2), never a fallback to plain DDS.

    A :class:`ConfigurationError` (or :class:`~mobility_twin.ros.params.ParameterError`) raised while the
    node is built is logged as one fatal line and the process exits with status 2.

    A node asks to stop by setting ``self.exit_code`` (an int) and letting its callbacks return: the
    spin loop checks it, so nodes never call rclpy.shutdown themselves. A node with a ``close()`` method
    (to stop its own threads) has it called before it is destroyed. Returns the process exit status.
    """
    from mobility_twin.security import SecurityError, use_host_profile
    from mobility_twin_core.allocator import keep_freed_memory_from_env

    try:  # every message reallocates the same arrays: keep freed memory for the next one (MTWIN_KEEP_FREED_MB)
        keep_freed_memory_from_env()
    except ValueError as err:
        rclpy.logging.get_logger(getattr(factory, "__name__", "node")).fatal(str(err))
        return 2
    try:  # on a TLS host (MTWIN_TLS_HOST_DIR): this process's own port and profile, before DDS starts
        use_host_profile()
    except SecurityError as err:  # never start unprotected on a host that is meant to be protected
        rclpy.logging.get_logger(getattr(factory, "__name__", "node")).fatal(str(err))
        return 2
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    exit_code = 0
    try:
        try:
            node = factory()
        except ConfigurationError as err:  # a parameter or layout the node cannot start with: say which, exit
            rclpy.logging.get_logger(getattr(factory, "__name__", "node")).fatal(str(err))
            return 2
        executor = make_executor()
        executor.add_node(node)
        failures = 0  # in a row
        while rclpy.ok() and getattr(node, "exit_code", None) is None:
            try:
                executor.spin_once(timeout_sec=0.1)
                failures = 0
            except RuntimeError as err:  # rclpy's own (a callback's are caught by ros.guard): one event lost
                failures += 1
                node.get_logger().error(f"the executor lost an event ({failures} in a row): {err}",
                                        throttle_duration_sec=5.0)
                if failures >= MAX_EXECUTOR_FAILURES:
                    raise
        exit_code = getattr(node, "exit_code", None) or 0
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if hasattr(node, "close"):
                node.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return exit_code
