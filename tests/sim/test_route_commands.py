"""The route-command interface as messages: commands built from a RouteCommand, statuses from the world's
answers, the signals' message. Message types only: no running node."""

import math

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def test_a_route_command_becomes_the_worlds_commands_in_order():
    from mobility_twin.ros.convert import to_time
    from mobility_twin.ros.route_commands import Refusal, world_commands
    from mobility_twin_msgs.msg import RouteCommand, RouteCommandStatus
    from mobility_twin_sim.backend import RouteCommand as Route
    from mobility_twin_sim.backend import SpeedCommand, TargetCommand

    msg = RouteCommand(edges=["A", "B"], target_edge="C", set_speed=True, speed=5.0, validity=2.0)
    msg.header.stamp = to_time(100.0)
    assert world_commands(msg, "cav_0", 101.0) == [Route("cav_0", ("A", "B")), SpeedCommand("cav_0", 5.0)]
    target = RouteCommand(vehicle_id="cav_0", target_edge="C")
    assert world_commands(target, "cav_0", 1e9) == [TargetCommand("cav_0", "C")]  # validity 0: no expiry
    S = RouteCommandStatus
    assert world_commands(msg, "cav_0", 102.5) == Refusal(S.STATUS_EXPIRED, world_commands(msg, "cav_0", 102.5).reason)
    assert world_commands(RouteCommand(vehicle_id="cav_1", edges=["A"]), "cav_0", 0.0).status == S.STATUS_INVALID
    assert world_commands(RouteCommand(), "cav_0", 0.0).status == S.STATUS_INVALID  # nothing to do
    assert world_commands(RouteCommand(set_speed=True, speed=math.nan), "cav_0", 0.0).status == S.STATUS_INVALID
    assert world_commands(RouteCommand(edges=["A"], validity=-1.0), "cav_0", 0.0).status == S.STATUS_INVALID


def test_the_worlds_reasons_become_statuses():
    from mobility_twin.ros.route_commands import status_msg, status_of
    from mobility_twin_msgs.msg import RouteCommand, RouteCommandStatus
    from mobility_twin_sim.backend import CommandResult

    S = RouteCommandStatus
    assert status_of("unknown vehicle: 'x' is not on the road") == S.STATUS_UNKNOWN_VEHICLE
    assert status_of("unknown edge: 'E9' is not a road of beijing_cbd") == S.STATUS_UNKNOWN_EDGE
    assert status_of("route refused: no connection") == S.STATUS_NO_ROUTE
    assert status_of("no route: E1 -> E2") == S.STATUS_NO_ROUTE
    assert status_of("the T-Drive replay does not take commands: ...") == S.STATUS_NOT_SUPPORTED
    msg = RouteCommand(command_id="g-1")
    ok = status_msg(msg, "cav_0", 12.5, CommandResult(True), ("A", "B"), "A")
    assert ok.status == S.STATUS_ACCEPTED and ok.route == ["A", "B"] and ok.vehicle_id == "cav_0"
    assert ok.command_id == "g-1" and ok.header.stamp.sec == 12 and ok.road == "A"
    refused = status_msg(msg, "cav_0", 12.5, CommandResult(False, "unknown edge: 'Q'"), ("A", "B"), "A")
    assert refused.status == S.STATUS_UNKNOWN_EDGE and refused.route == [] and "unknown edge" in refused.reason


def test_signals_become_a_signal_state_array():
    from mobility_twin.ros.route_commands import signals_msg
    from mobility_twin_sim.backend import SignalStates

    signals = SignalStates(5.0, ("J1", "J2"), np.array([0.0, 225.0]), np.array([10.0, -5.0]), ("GGrr", "rryy"),
                           np.array([0, 3]), np.array([12.0, 2.5]))
    msg = signals_msg(signals, 5.0)
    assert [s.signal_id for s in msg.signals] == ["J1", "J2"] and msg.header.frame_id == "map"
    assert msg.signals[1].position.x == 225.0 and msg.signals[1].state == "rryy" and msg.signals[1].phase == 3
    assert msg.signals[0].time_to_switch == 12.0


def test_a_signal_state_array_reads_back_and_drops_repeated_or_broken_signals():
    from mobility_twin.ros.route_commands import signals_from_msg, signals_msg
    from mobility_twin_sim.backend import SignalStates

    signals = SignalStates(5.0, ("J1", "J2"), np.array([0.0, 225.0]), np.array([10.0, -5.0]), ("GGrr", "rryy"),
                           np.array([0, 3]), np.array([12.0, 2.5]))
    back = signals_from_msg(signals_msg(signals, 5.0))
    assert back.t == 5.0 and back.ids == signals.ids and back.state == signals.state
    assert np.array_equal(back.x, signals.x) and np.array_equal(back.phase, signals.phase)
    assert np.array_equal(back.next_switch_s, signals.next_switch_s)
    msg = signals_msg(signals, 5.0)
    msg.signals.append(msg.signals[0])  # J1 again
    msg.signals[1].time_to_switch = float("nan")  # J2 broken
    assert signals_from_msg(msg).ids == ("J1",)
