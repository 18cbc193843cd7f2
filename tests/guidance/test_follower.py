"""The route follower (the CAV's end of route guidance): which commands reach the vehicle's drive interface,
what is answered when none does, and when the vehicle asks the guidance for a route. The library on a real
SUMO network, and the node over DDS on its own (no drive interface, no guidance: it must answer anyway)."""

import math
import subprocess
import sys

import pytest

from mobility_twin.guidance.follower import Command, FollowerConfig, RouteFollower
from tests.ros_helpers import REPO, Collector, stop


@pytest.fixture(scope="module")
def graph():
    pytest.importorskip("sumolib")
    from mobility_twin.ros.road_network import load_map_roads

    return load_map_roads("beijing_cbd", "test")


def _two_connected(graph):
    for a in range(len(graph)):
        nxt = graph.successors(a)
        if len(nxt):
            return graph.ids[a], graph.ids[int(nxt[0])]
    raise AssertionError("no connected pair")


def test_map_checks_refuse_unknown_and_disconnected_roads(graph):
    f = RouteFollower("cav_0", graph)
    a, b = _two_connected(graph)
    assert f.check(Command("ok", 1.0, edges=(a, b))) is None
    status, reason = f.check(Command("x", 1.0, edges=(a, "no_such_road")))
    assert status == "unknown_edge" and "no_such_road" in reason
    assert f.check(Command("t", 1.0, target_edge="nowhere"))[0] == "unknown_edge"
    far = next(e for e in graph.ids if graph.index[e] not in graph.successors(graph.index[a]) and e != a)
    status, reason = f.check(Command("y", 1.0, edges=(a, far)))
    assert status == "no_route" and a in reason and far in reason
    assert RouteFollower("cav_0").check(Command("any", 1.0, edges=("whatever", "else"))) is None  # no map


def test_an_older_command_of_the_same_kind_is_superseded_another_kind_is_not(graph):
    f = RouteFollower("cav_0", graph)
    a, b = _two_connected(graph)
    f.passed_on(Command("new", 10.0, edges=(a, b)), now=10.0)
    status, reason = f.check(Command("old", 9.0, edges=(a,)))
    assert status == "expired" and "superseded" in reason and "'new'" in reason
    assert f.check(Command("brake", 9.0, set_speed=True)) is None  # a speed command is another kind
    assert f.check(Command("newer", 10.5, target_edge=b)) is None


def test_a_command_the_drive_interface_never_answers_is_given_up_once():
    f = RouteFollower("cav_0", config=FollowerConfig(control_timeout_s=2.0))
    f.passed_on(Command("c1", 0.0, set_speed=True), now=0.0)
    f.passed_on(Command("c2", 0.0, set_speed=True), now=1.5)
    assert f.overdue(1.9) == []
    assert f.answered("c2", 1.9, road="E0E1", route=("E0E1", "E1E2"))
    assert (f.road, f.route) == ("E0E1", ("E0E1", "E1E2"))
    assert f.overdue(2.1) == ["c1"] and f.overdue(10.0) == []
    assert f.answered("c1", 3.0)  # late, but the vehicle may have applied it: still relayed, once
    assert not f.answered("c1", 3.1) and not f.answered("never-sent", 3.1)
    assert f.fresh_road(6.0) == "E0E1" and f.fresh_road(7.0) == ""  # a request names only a fresh road


def test_a_clock_that_goes_back_starts_the_follower_afresh():
    f = RouteFollower("cav_0")
    assert f.tick(100.0)
    f.passed_on(Command("new", 100.0, edges=("A", "B")), now=100.0)
    assert f.check(Command("older", 50.0, edges=("A",)))[0] == "expired"
    assert f.tick(99.5)  # jitter of the clock is no restart
    assert not f.tick(10.0)  # the simulation restarted: sim time is back at its start
    assert f.check(Command("older", 50.0, edges=("A",))) is None and f.overdue(1000.0) == []


def test_requests_are_sent_for_a_destination_retried_until_answered_and_renewed_when_it_changes(graph):
    f = RouteFollower("cav_0", graph, FollowerConfig(request_retry_s=5.0))
    assert f.request_due(0.0) is None  # no mission yet
    assert f.set_destination("no_such_road")[0] == "unknown_edge" and f.destination == ""
    a, b = _two_connected(graph)
    assert f.set_destination(a) is None
    first = f.request_due(0.0)
    assert first and f.request_due(1.0) is None
    f.on_guidance(first, "stale_twin")  # not yet: asked again after the retry time
    second = f.request_due(5.1)
    assert second and second != first
    assert f.request_due(14.0) is None and f.request_due(15.2)  # then after twice as long (a slow guidance)
    third = f._request.request_id
    f.on_guidance("cav_0-elsewhere-1", "routed")  # not a request for this destination: changes nothing
    assert f.request_due(36.0)
    f.on_guidance(first, "routed")  # a late answer to an earlier request for this destination counts
    assert f.request_due(100.0) is None  # guided: no more requests
    assert third != first
    assert f.set_destination(a) is None and f.request_due(100.0) is None  # the same mission again
    f.on_guidance(third, "vehicle_left")  # the guidance lost it: ask again, after the back-off (40 s by now)
    assert f.request_due(100.0)
    f.on_guidance(f._request.request_id, "routed")
    f.on_guidance(f._request.request_id, "vehicle_left")
    assert f.request_due(139.0) is None and f.request_due(140.5)
    f.on_guidance(f._request.request_id, "arrived")
    assert f.request_due(1000.0) is None
    assert f.set_destination(b) is None and f.request_due(1000.0)  # a new mission
    f.on_guidance(f._request.request_id, "routed", now=1000.0)
    assert f.set_destination(b, now=1100.0) is None and f.request_due(1100.0) is None  # guided, heard lately
    assert f.set_destination(b, now=1121.0) is None and f.request_due(1121.0)  # silent 2 min: restarted?
    assert f.set_destination("no_such_road")[0] == "unknown_edge" and f.destination == ""  # not the old one
    assert f.set_destination(b) is None and f.set_destination("") is None and f.destination == ""


def test_config_refuses_a_non_positive_timeout():
    with pytest.raises(ValueError, match="control_timeout_s"):
        FollowerConfig(control_timeout_s=0.0)
    with pytest.raises(ValueError, match="request_retry_s"):
        FollowerConfig(request_retry_s=math.nan)


@pytest.mark.ros
def test_the_node_answers_every_command_and_asks_for_its_destination(tmp_path):
    from std_msgs.msg import Header

    from mobility_twin.ros.convert import to_time
    from mobility_twin.ros.qos import EVENTS
    from mobility_twin_msgs.msg import RouteCommand, RouteCommandStatus, RouteRequest

    status, control, requests = "/cav/cav_5/route_command/status", "/cav/cav_5/control/route_command", \
        "/guidance/route_requests"
    log = tmp_path / "follower.log"
    code = "from mobility_twin.nodes.route_follower import main; raise SystemExit(main())"
    with Collector({status: RouteCommandStatus, control: RouteCommand, requests: RouteRequest},
                   qos={status: EVENTS, control: EVENTS, requests: EVENTS}) as c:
        cmd_pub = c.node.create_publisher(RouteCommand, "/cav/cav_5/route_command", EVENTS)
        mission_pub = c.node.create_publisher(RouteRequest, "/cav/cav_5/destination", EVENTS)
        proc = subprocess.Popen([sys.executable, "-c", code, "--ros-args", "-p", "cav_id:=cav_5", "-p",
                                 "control_timeout_s:=1.0", "-p", "request_retry_s:=1.0"], cwd=REPO,
                                stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert c.wait_for(lambda m: c.node.count_subscribers("/cav/cav_5/route_command") > 0
                              and c.node.count_subscribers("/cav/cav_5/destination") > 0, timeout=30), log.read_text()
            now = c.node.get_clock().now()
            cmd_pub.publish(RouteCommand(header=Header(stamp=now.to_msg()), command_id="go", edges=["E1E2"],
                                         validity=30.0))
            cmd_pub.publish(RouteCommand(header=Header(stamp=to_time(1.0)), command_id="stale", edges=["E1E2"],
                                         validity=1.0))
            cmd_pub.publish(RouteCommand(command_id="other", vehicle_id="cav_6", set_speed=True, speed=3.0))
            mission_pub.publish(RouteRequest(vehicle_id="cav_5", destination_edge="E4E5"))
            ok = c.wait_for(lambda m: {"go", "stale", "other"} <= {s.command_id for s in m[status]}
                            and len(m[requests]) >= 2, timeout=20)
            assert ok, log.read_text()
        finally:
            code_ = stop(proc)
    answers = {s.command_id: s for s in c.messages[status]}
    assert [m.command_id for m in c.messages[control]] == ["go"]  # only the good one reached the vehicle
    assert answers["go"].status == RouteCommandStatus.STATUS_NOT_SUPPORTED and "did not answer" in answers["go"].reason
    assert answers["stale"].status == RouteCommandStatus.STATUS_EXPIRED
    assert answers["other"].status == RouteCommandStatus.STATUS_INVALID
    asked = c.messages[requests]
    assert all(r.vehicle_id == "cav_5" and r.destination_edge == "E4E5" for r in asked)
    assert len({r.request_id for r in asked}) == len(asked)  # retried: the guidance never answered
    assert code_ in (0, -2, 130) and "Traceback" not in log.read_text(), log.read_text()
