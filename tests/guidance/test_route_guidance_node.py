"""The route_guidance node over DDS with the SUMO world and the CAV's route_follower: the CAV's mission becomes a
route request, the node sends a RouteCommand, the follower checks it and passes it to the vehicle's drive
interface (the replay node in simulation), which applies it, and the CAV's route changes; bad requests and bad
commands get a clear status. Real processes, real rclpy, real SUMO (the twin's tracks are the simulator's
ground truth here, so that no perception and twin processes are needed)."""

import subprocess
import sys

import pytest
import yaml

from tests.ros_helpers import REPO, Collector, stop
from tests.sim.test_replay_node import SMALL_SUMO

pytestmark = pytest.mark.ros


def _node(module: str, log, *params: str) -> subprocess.Popen:
    """A node of the stack as a process of its own (its module's main, as the launch files run it)."""
    code = f"from mobility_twin.nodes.{module} import main; raise SystemExit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "--ros-args", *params], cwd=REPO, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_a_cav_asks_and_the_node_changes_its_route(tmp_path):
    pytest.importorskip("libsumo")
    from mobility_twin.ros.qos import EVENTS
    from mobility_twin_msgs.msg import RouteCommand, RouteCommandStatus, RouteGuidanceStatus, RouteRequest

    scenario = tmp_path / "small_sumo.yaml"
    scenario.write_text(yaml.safe_dump(SMALL_SUMO))
    vstatus, gstatus = "/cav/cav_0/route_command/status", "/guidance/status"
    with Collector({vstatus: RouteCommandStatus, gstatus: RouteGuidanceStatus, "/cav/cav_0/route_command": RouteCommand},
                   qos={vstatus: EVENTS, gstatus: EVENTS, "/cav/cav_0/route_command": EVENTS}) as c:
        probe_pub = c.node.create_publisher(RouteCommand, "/cav/cav_0/route_command", EVENTS)
        req_pub = c.node.create_publisher(RouteRequest, "/guidance/route_requests", EVENTS)
        replay = _node("replay", tmp_path / "replay.log", "-p", f"scenario:={scenario}", "-p", "rate:=5.0",
                       "-p", f"output_dir:={tmp_path / 'out'}")
        guidance = _node("route_guidance", tmp_path / "guidance.log", "-p", "use_sim_time:=true",
                         "-p", "objects_topic:=/sim/ground_truth", "-p", "cycle_s:=0.5", "-p", "reroute_period_s:=5.0")
        follower = _node("route_follower", tmp_path / "follower.log", "-p", "use_sim_time:=true",
                         "-p", "cav_id:=cav_0", "-p", "network:=beijing_cbd", "-p", "request_retry_s:=2.0")
        try:
            # the CAV's own mission: the replay's destination -> follower -> guidance -> command -> follower ->
            # the drive interface, answered accepted (the guidance is stale until it has twin data: asked again)
            def mission_routed(m) -> bool:
                routed = {s.command_id for s in m[gstatus] if s.vehicle_id == "cav_0" and s.command_id
                          and s.request_id.startswith("cav_0-")}
                return any(s.command_id in routed and s.status == RouteCommandStatus.STATUS_ACCEPTED
                           for s in m[vstatus])
            assert c.wait_for(mission_routed, timeout=90), \
                (tmp_path / "follower.log").read_text()[-2000:] + (tmp_path / "guidance.log").read_text()[-2000:]
            def probe(k: int):  # where is cav_0? a speed release changes nothing and answers with its road
                probe_pub.publish(RouteCommand(command_id=f"probe-{k}", set_speed=True, speed=-1.0))
                c.wait_for(lambda m: any(s.command_id == f"probe-{k}" for s in m[vstatus]), timeout=5)
                return next((s for s in c.messages[vstatus] if s.command_id == f"probe-{k}"), None)

            answer = None
            for k in range(40):
                assert replay.poll() is None and guidance.poll() is None, \
                    (tmp_path / "replay.log").read_text()[-3000:] + (tmp_path / "guidance.log").read_text()[-3000:]
                answer = probe(k)
                if answer is not None and answer.status == RouteCommandStatus.STATUS_ACCEPTED and \
                        answer.road and not answer.road.startswith(":") and len(answer.route) >= 2:
                    break
                c.spin(0.5)
            assert answer is not None and answer.road, (tmp_path / "replay.log").read_text()[-2000:]
            old = list(answer.route)
            destination = next(e for e in ("A0A1", "K10K9", "A10A9", "K0K1") if e not in old)

            def ask(request_id: str, **fields) -> RouteGuidanceStatus | None:
                req_pub.publish(RouteRequest(request_id=request_id, **fields))
                c.wait_for(lambda m: any(s.request_id == request_id for s in m[gstatus]), timeout=30)
                return next((s for s in c.messages[gstatus] if s.request_id == request_id), None)

            # the guidance starts once it has twin data (stale before): ask until it routes
            routed = None
            for k in range(20):
                routed = ask(f"r{k}", vehicle_id="cav_0", destination_edge=destination, current_edge=probe(100 + k).road)
                if routed is not None and routed.status == RouteGuidanceStatus.STATUS_ROUTED:
                    break
                assert routed is None or routed.status == RouteGuidanceStatus.STATUS_STALE_TWIN, routed
                c.spin(1.0)
            assert routed is not None and routed.status == RouteGuidanceStatus.STATUS_ROUTED, \
                (tmp_path / "guidance.log").read_text()
            assert routed.command_id.startswith("guidance-") and routed.edges[-1] == destination
            applied = c.wait_for(lambda m: any(s.command_id == routed.command_id for s in m[vstatus]), timeout=30)
            assert applied, (tmp_path / "replay.log").read_text()[-2000:]
            status = next(s for s in c.messages[vstatus] if s.command_id == routed.command_id)
            assert status.status == RouteCommandStatus.STATUS_ACCEPTED, status.reason
            assert status.route[-1] == destination and status.route != old  # the CAV's route changed
            # bad requests: a clear status each, nothing sent to a vehicle
            bad = ask("bad-edge", vehicle_id="cav_0", destination_edge="no_such_road", current_edge=status.road)
            assert bad.status == RouteGuidanceStatus.STATUS_UNKNOWN_EDGE and "unknown edge" in bad.reason
            assert not bad.command_id
            # the follower refuses, before the vehicle sees it, a road its map does not have and a command
            # older than the newest route it passed on
            probe_pub.publish(RouteCommand(command_id="no-road", edges=[status.road, "no_such_road"]))
            probe_pub.publish(RouteCommand(command_id="old", edges=[status.road]))  # stamp 0: before every command
            assert c.wait_for(lambda m: {"no-road", "old"} <= {s.command_id for s in m[vstatus]}, timeout=10)
            answers = {s.command_id: s for s in c.messages[vstatus]}
            assert answers["no-road"].status == RouteCommandStatus.STATUS_UNKNOWN_EDGE
            assert "vehicle's map" in answers["no-road"].reason
            assert answers["old"].status == RouteCommandStatus.STATUS_EXPIRED and "superseded" in answers["old"].reason
            nobody = ask("nobody", vehicle_id="cav_9", destination_edge=destination)
            assert nobody.status == RouteGuidanceStatus.STATUS_UNKNOWN_VEHICLE
            # a vehicle that is not on the road: routed on the road it claims, then refused by the world -> left
            ghost = ask("ghost", vehicle_id="cav_7", destination_edge=destination, current_edge=status.road)
            assert ghost.status == RouteGuidanceStatus.STATUS_ROUTED
            left = c.wait_for(lambda m: any(s.vehicle_id == "cav_7" and
                                            s.status == RouteGuidanceStatus.STATUS_VEHICLE_LEFT for s in m[gstatus]),
                              timeout=30)
            assert left, [(s.vehicle_id, s.status, s.reason) for s in c.messages[gstatus]]
        finally:
            stop(follower)
            stop(guidance)
            stop(replay)
    for name in ("guidance", "follower"):
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in log, log
