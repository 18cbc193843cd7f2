"""The helpers nodes share (parameter groups, summary lines, QoS), without starting a node."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from mobility_twin.ros.guard import Every, count_summary
from mobility_twin.ros.node_params import InputCheckParams, StateParams, TwinInputParams
from mobility_twin.ros.params import field
from mobility_twin.ros.qos import EVENTS, LATCHED, NEWEST_FRAME, SENSOR_STREAM, keep_last


@dataclasses.dataclass(frozen=True)
class _Consumer(TwinInputParams, InputCheckParams, StateParams):
    STATE_FILE = "consumer.json"

    objects_timeout_s: float = field(9.0, "a node's own default overrides the group's", low=0.0, high=10.0)


class _Named:
    def get_fully_qualified_name(self) -> str:
        return "/site_1/consumer"


def test_a_config_inherits_the_groups_and_overrides_a_default():
    names = [f.name for f in dataclasses.fields(_Consumer)]
    assert len(names) == len(set(names))  # log_period_s of two groups is one parameter
    assert {"objects_topic", "servers_topic", "vehicle_classes", "max_future_s", "state_path"} <= set(names)
    cfg = _Consumer()
    assert cfg.objects_timeout_s == 9.0 and cfg.servers_timeout_s == 5.0
    limits = cfg.input_limits(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)))
    assert (limits.area_margin_m, limits.max_future_s, limits.max_age_s) == (200.0, 2.0, 30.0)


def test_the_state_file_is_the_nodes_own_or_none(state_folder):
    assert _Consumer().state_file(_Named()) == state_folder / "site_1__consumer" / "consumer.json"
    assert _Consumer(state_path="none").state_file(_Named()) is None
    assert _Consumer(state_path="/tmp/x.json").state_file(_Named()) == Path("/tmp/x.json")


def test_every_is_due_once_per_period_and_counts_read_sorted():
    every = Every(0.05)
    assert not every.due()
    time.sleep(0.06)
    assert every.due() and not every.due()
    assert count_summary(Counter()) == "none"
    assert count_summary(Counter({"b": 2, "a": 1})) == "a 1, b 2"


def test_the_named_profiles_are_keep_last_profiles():
    assert SENSOR_STREAM == keep_last(5, reliable=False)
    assert SENSOR_STREAM.reliability == ReliabilityPolicy.BEST_EFFORT
    assert NEWEST_FRAME == keep_last(1, reliable=False)  # a perception node takes the newest cloud only
    assert EVENTS.depth == 100 and EVENTS.reliability == ReliabilityPolicy.RELIABLE
    assert LATCHED.durability == DurabilityPolicy.TRANSIENT_LOCAL and LATCHED.depth == 1


def _run_in_process(factory) -> int:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(factory)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_an_error_inside_the_executor_loses_one_event_not_the_node():
    # a timer callback that is not guarded raises out of spin_once twice, then the node ends normally
    result = _run_in_process("""
        from rclpy.node import Node
        from mobility_twin.ros.entry import run_node

        class Flaky(Node):
            def __init__(self):
                super().__init__("flaky")
                self.calls, self.exit_code = 0, None
                self.create_timer(0.01, self.tick)

            def tick(self):
                self.calls += 1
                if self.calls <= 2:
                    raise RuntimeError("Unable to convert call argument '0' to Python object")
                self.exit_code = 7

        raise SystemExit(run_node(Flaky, args=[]))
    """)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "the executor lost an event (1 in a row)" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
