"""launch_probe: reports what a launch configuration resolved to, from inside a real node.

It accepts any parameter, and after ``report_after_s`` writes a JSON report to ``report_path`` with its
fully qualified name, every parameter it was given (with its type) and how each name in ``topics``
resolves after remapping; then it exits with ``exit_code`` (non-zero: a crash, for checking how a
launch reacts), or keeps running when ``exit_code`` is -1. Use it to debug a launch file on a robot:

    mtwin launch launch/my.launch.xml   (with <node pkg="mobility_twin" exec="launch_probe" .../>)
"""

from __future__ import annotations

import json
from pathlib import Path

from rclpy.node import Node

from mobility_twin.ros.entry import run_node


class LaunchProbe(Node):
    def __init__(self) -> None:
        super().__init__(
            "launch_probe", allow_undeclared_parameters=True, automatically_declare_parameters_from_overrides=True
        )
        self.exit_code: int | None = None
        delay = self.get_parameter_or("report_after_s", None)
        self.timer = self.create_timer(float(delay.value) if delay and delay.value is not None else 0.2, self.report)

    def report(self) -> None:
        self.timer.cancel()
        params = {
            name: {"value": p.value, "type": p.type_.name}
            for name, p in sorted(self.get_parameters_by_prefix("").items()) if name != "use_sim_time"
        }
        topics = self.get_parameter_or("topics", None)
        resolved = {t: self.resolve_topic_name(t) for t in (topics.value if topics and topics.value else [])}
        report = {
            "name": self.get_name(),
            "namespace": self.get_namespace(),
            "fully_qualified_name": self.get_fully_qualified_name(),
            "parameters": params,
            "topics": resolved,
        }
        path = self.get_parameter_or("report_path", None)
        if path and path.value:
            Path(path.value).write_text(json.dumps(report, indent=2))
        self.get_logger().info(json.dumps(report))
        code = self.get_parameter_or("exit_code", None)
        code = int(code.value) if code and code.value is not None else 0
        if code >= 0:
            self.exit_code = code


def main() -> int:
    return run_node(LaunchProbe)
