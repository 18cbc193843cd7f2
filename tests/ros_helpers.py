"""Real rclpy helpers for integration tests: a subscriber node in the test process, processes to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


def node_launch_file(path: Path, executable: str, name: str, **params) -> Path:
    """Write a launch file at ``path`` that starts one ``mobility_twin`` node: ``name`` running ``executable``
    with the shipped ``config/<executable>.yaml``, then ``params`` (name=value) over it."""
    lines = "".join(f'\n    <param name="{k}" value="{v}"/>' for k, v in params.items())
    path.write_text(f"""<launch>
  <node pkg="mobility_twin" exec="{executable}" name="{name}">
    <param from="$(find-pkg-share mobility_twin)/config/{executable}.yaml"/>{lines}
  </node>
</launch>""")
    return path


def server_twins(servers: dict[str, tuple[float, float]], **fields):
    """An EdgeServerStateArray (frame map) of the servers at ``servers`` (id -> x, y); ``fields`` are
    EdgeServerState fields, each a value or a function of the server id."""
    from geometry_msgs.msg import Point
    from std_msgs.msg import Header

    from mobility_twin_msgs.msg import EdgeServerState, EdgeServerStateArray

    msg = EdgeServerStateArray(header=Header(frame_id="map"))
    for sid, (x, y) in servers.items():
        values = {k: v(sid) if callable(v) else v for k, v in fields.items()}
        msg.servers.append(EdgeServerState(server_id=sid, position=Point(x=x, y=y), **values))
    return msg


def vehicle_twins(cars: dict[str, tuple[float, float]], twin_id: str = "global"):
    """A TrackedObjectArray (frame map) of confirmed cars at ``cars`` (vehicle id -> x, y), track ids 1, 2..."""
    from std_msgs.msg import Header

    from mobility_twin_msgs.msg import TrackedObject, TrackedObjectArray

    msg = TrackedObjectArray(header=Header(frame_id="map"), twin_id=twin_id)
    for k, (vid, (x, y)) in enumerate(cars.items()):
        o = TrackedObject(track_id=k + 1, object_class=1, state=1, vehicle_id=vid)
        o.pose.pose.position.x, o.pose.pose.position.y = x, y
        msg.objects.append(o)
    return msg


def publish_twin(collector: Collector, prefix: str, objects, servers: Callable[[], object], period_s: float = 0.2):
    """Publish a twin from ``collector``'s node every ``period_s``: ``objects`` on ``<prefix>/objects`` and
    ``servers()`` (the server twins of the moment) on ``<prefix>/edge_servers``, as a twin node does."""
    from mobility_twin.ros.qos import TWIN_STATE
    from mobility_twin_msgs.msg import EdgeServerStateArray, TrackedObjectArray

    pub_o = collector.node.create_publisher(TrackedObjectArray, f"{prefix}/objects", TWIN_STATE)
    pub_s = collector.node.create_publisher(EdgeServerStateArray, f"{prefix}/edge_servers", TWIN_STATE)
    return collector.node.create_timer(period_s, lambda: (pub_o.publish(objects), pub_s.publish(servers())))


@dataclass
class LaunchRun:
    """A launch file run by :func:`launched`: ``alive`` (still running at the end of the with-block) and
    ``status`` (its exit status once stopped) are set when the block ends."""

    proc: subprocess.Popen
    log_path: Path
    alive: bool = False
    status: int | None = None

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def assert_ran_cleanly(self) -> None:
        """It ran through the block and stopped on SIGINT as a node should (its log is the message)."""
        log = self.log
        assert self.alive, log
        assert self.status in (0, -2, 130), log


@contextmanager
def launched(launch: Path, duration_s: float, log: Path) -> Iterator[LaunchRun]:
    """Run `mtwin launch LAUNCH --duration S` (output to ``log``) for the with-block, then stop it."""
    run = LaunchRun(start_mtwin("launch", str(launch), "--duration", f"{duration_s:g}", log=log), log)
    try:
        yield run
        run.alive = run.proc.poll() is None
    finally:
        run.status = stop(run.proc)
