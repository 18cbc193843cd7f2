"""Real rclpy helpers for integration tests: a subscriber node in the test process, processes to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Collector:
    """A node in the test process that records every message on the given topics.

    Usage: ``with Collector({"/clock": Clock}) as c: c.wait_for(lambda m: len(m["/clock"]) > 3, 30)``
    """

    def __init__(self, topics: dict[str, type], qos: dict[str, object] | None = None, name: str = "test_collector"):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from mobility_twin.ros.qos import SENSOR_STREAM, TWIN_STATE

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.messages: dict[str, list] = defaultdict(list)
        self.arrival: dict[str, list[float]] = defaultdict(list)
        qos = qos or {}
        for topic, msg_type in topics.items():
            profile = qos.get(topic, SENSOR_STREAM if topic.endswith(("points", "odom")) else TWIN_STATE)
            self.node.create_subscription(msg_type, topic, self._callback(topic), profile)

    def _callback(self, topic: str) -> Callable:
        def record(msg) -> None:
            self.messages[topic].append(msg)
            self.arrival[topic].append(time.time())

        return record

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def wait_for(self, condition: Callable[[dict], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition(self.messages):
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return condition(self.messages)

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_mtwin(*args: str, env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start `mtwin ARGS` as a real process (its own process group), output to ``log`` or a pipe."""
    out = log.open("w") if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "mobility_twin.cli", *args], cwd=REPO, stdout=out,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
                            start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT the process group, then kill it if it does not stop; return the exit status."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
