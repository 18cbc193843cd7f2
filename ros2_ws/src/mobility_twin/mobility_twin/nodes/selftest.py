"""Self-test nodes: is DDS carrying every mobility_twin interface between these processes (or hosts) intact?

selftest_talker publishes message ``seq`` of every interface (interface_samples.SAMPLES) on
``<topic_prefix>/<Interface>`` at ``rate_hz``; selftest_listener checks each message it receives
against the sample it should equal, and once every interface has arrived ``expected_count`` times
(or ``timeout_s`` passes) it prints a summary, optionally writes it as JSON, and exits: status 0 when
everything arrived intact, 1 otherwise. Launch: launch/selftest.launch.xml.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.node import Node

from mobility_twin.ros.entry import run_node
from mobility_twin.ros.interface_samples import SAMPLES
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import TWIN_STATE


@dataclass(frozen=True)
class TalkerConfig:
    topic_prefix: str = field("selftest", "topics are <topic_prefix>/<Interface>")
    rate_hz: float = field(10.0, "messages per second on each topic")
    count: int = field(0, "messages per topic before stopping (0: publish until shut down)")


@dataclass(frozen=True)
class ListenerConfig:
    topic_prefix: str = field("selftest", "topics are <topic_prefix>/<Interface>")
    expected_count: int = field(10, "intact messages needed on every topic to pass")
    timeout_s: float = field(30.0, "give up (and fail) after this many seconds")
    report_path: str = field("", "write the summary as JSON to this file ('' for none)")


class SelfTestTalker(Node):
    def __init__(self) -> None:
        super().__init__("selftest_talker")
        self.config = declare_config(self, TalkerConfig)
        self.exit_code: int | None = None
        self.seq = 0
        self.pubs = {
            name: self.create_publisher(s.type, f"{self.config.topic_prefix}/{name}", TWIN_STATE)
            for name, s in SAMPLES.items()
        }
        self.timer = self.create_timer(1.0 / self.config.rate_hz, self.on_timer)
        self.get_logger().info(f"publishing {len(self.pubs)} interfaces at {self.config.rate_hz:g} Hz")

    def on_timer(self) -> None:
        for name, pub in self.pubs.items():
            pub.publish(SAMPLES[name].build(self.seq))
        self.seq += 1
        if self.config.count and self.seq >= self.config.count:
            self.get_logger().info(f"published {self.seq} messages on each topic: done")
            self.exit_code = 0


class SelfTestListener(Node):
    def __init__(self) -> None:
        super().__init__("selftest_listener")
        self.config = declare_config(self, ListenerConfig)
        self.exit_code: int | None = None
        self.started = time.monotonic()
        self.intact = dict.fromkeys(SAMPLES, 0)
        self.corrupt = dict.fromkeys(SAMPLES, 0)
        self.subs = [
            self.create_subscription(s.type, f"{self.config.topic_prefix}/{name}",
                                     lambda msg, name=name: self.on_message(name, msg), TWIN_STATE)
            for name, s in SAMPLES.items()
        ]
        self.timer = self.create_timer(0.2, self.check_done)

    def on_message(self, name: str, msg) -> None:
        sample = SAMPLES[name]
        if msg == sample.build(sample.seq_of(msg)):
            self.intact[name] += 1
        else:
            self.corrupt[name] += 1
            self.get_logger().error(f"{name}: message differs from the sample it should equal")

    def check_done(self) -> None:
        complete = all(n >= self.config.expected_count for n in self.intact.values())
        timed_out = time.monotonic() - self.started > self.config.timeout_s
        if not (complete or timed_out):
            return
        ok = complete and not any(self.corrupt.values())
        report = {
            "passed": ok,
            "interfaces": len(SAMPLES),
            "intact": self.intact,
            "corrupt": self.corrupt,
            "seconds": round(time.monotonic() - self.started, 3),
        }
        lines = [f"  {name:<22} intact {self.intact[name]:>4}  corrupt {self.corrupt[name]}" for name in SAMPLES]
        verdict = "PASSED" if ok else ("FAILED: timed out" if not complete else "FAILED: corrupt messages")
        self.get_logger().info(
            f"self-test {verdict}: {len(SAMPLES)} interfaces, {sum(self.intact.values())} intact messages "
            f"in {report['seconds']} s\n" + "\n".join(lines)
        )
        if self.config.report_path:
            Path(self.config.report_path).write_text(json.dumps(report, indent=2))
        self.exit_code = 0 if ok else 1


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"talker_main": TalkerConfig, "listener_main": ListenerConfig}


def talker_main() -> int:
    return run_node(SelfTestTalker)


def listener_main() -> int:
    return run_node(SelfTestListener)
