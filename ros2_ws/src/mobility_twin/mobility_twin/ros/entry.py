"""The `main()` every node executable shares: init, spin, clean shutdown."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Create the node with ``factory`` and spin it until Ctrl-C, external shutdown, or the node asks to stop.

    A node asks to stop by setting ``self.exit_code`` (an int) and letting its callbacks return: the
    spin loop checks it, so nodes never call rclpy.shutdown themselves. A node with a ``close()`` method
    (to stop its own threads) has it called before it is destroyed. Returns the process exit status.
    """
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    exit_code = 0
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and getattr(node, "exit_code", None) is None:
            executor.spin_once(timeout_sec=0.1)
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
