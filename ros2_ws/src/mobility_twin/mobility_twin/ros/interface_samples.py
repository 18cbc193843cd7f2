"""A deterministic, fully populated sample of every mobility_twin_msgs interface, numbered by ``seq``.

Used by the self-test nodes (is DDS carrying our interfaces between these processes/hosts, intact?) and
by the interface round-trip tests. Needs the message classes, not a running ROS graph. Float32 fields
hold values float32 represents exactly, so a received message compares equal to its sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Quaternion, TwistWithCovariance, Vector3
from std_msgs.msg import Header

from mobility_twin_msgs import msg as m


def _stamp(seq: int) -> Time:
    return Time(sec=1_202_000_000 + seq, nanosec=(seq * 1_000_003) % 1_000_000_000)


def _header(seq: int, frame: str = "map") -> Header:
    return Header(stamp=_stamp(seq), frame_id=frame)


def _yaw(yaw: float) -> Quaternion:
    return Quaternion(z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0))


def _pose_cov(seq: int) -> PoseWithCovariance:
    cov = [0.0] * 36
    cov[0], cov[7], cov[14], cov[35] = 0.04 + seq, 0.05, 0.5, 0.01
    return PoseWithCovariance(
        pose=Pose(position=Point(x=100.0 + seq, y=-50.25, z=0.8), orientation=_yaw(0.3)), covariance=cov
    )


def _twist_cov(seq: int) -> TwistWithCovariance:
    twist = TwistWithCovariance()
    twist.twist.linear.x = 12.5
    twist.twist.linear.y = -0.5 * seq
    twist.twist.angular.z = 0.02
    twist.covariance[0] = 0.25
    return twist


def _source_frame(seq: int) -> m.SourceFrame:
    return m.SourceFrame(
        source_id=f"rsu_{seq % 8:02d}", sensor_stamp=_stamp(seq), stages=["sensor", "perception"],
        stage_wall_time=[1_700_000_000.0 + seq, 1_700_000_000.012 + seq],
    )


def _detected(seq: int) -> m.DetectedObject:
    return m.DetectedObject(
        object_class=m.DetectedObject.CLASS_CAR, confidence=0.875, pose=_pose_cov(seq), twist=_twist_cov(seq),
        has_twist=True, dimensions=Vector3(x=4.5, y=1.8, z=1.5), num_points=seq, range=23.5,
        self_report_id="cav_1059",
    )


def _tracked(seq: int) -> m.TrackedObject:
    return m.TrackedObject(
        track_id=seq, object_class=m.DetectedObject.CLASS_CAR, state=m.TrackedObject.STATE_CONFIRMED,
        existence_probability=0.96875, pose=_pose_cov(seq), twist=_twist_cov(seq),
        state_covariance=[0.25 * (k % 5) for k in range(16)],
        dimensions=Vector3(x=4.5, y=1.8, z=1.5), last_measurement=_stamp(seq), age_of_information=0.125,
        sources=["rsu_01", "cav_1059"], site_id="site_0", vehicle_id="1059",
    )


def _entity(seq: int) -> m.TwinEntity:
    return m.TwinEntity(
        entity_id=f"rsu_{seq:02d}", kind=m.TwinEntity.KIND_RSU, site_id="site_0",
        pose=Pose(position=Point(x=10.0, y=20.0, z=5.0), orientation=_yaw(0.0)), last_update=_stamp(seq),
        age_of_information=0.25, stale=seq % 2 == 1, messages_received=100 + seq, messages_rejected=seq,
    )


def _server(seq: int) -> m.EdgeServerState:
    return m.EdgeServerState(
        server_id=f"edge_{seq}", position=Point(x=250.0, y=750.0, z=0.0), coverage_radius=150.0,
        cpu_frequency_max=2.0e10, cpu_frequency_estimate=1.5e10 + seq, cpu_frequency_deviation=5.0e8, load=0.5,
        vehicles_served=seq, twins_hosted=3,
    )


def _decision(seq: int) -> m.OffloadDecision:
    return m.OffloadDecision(
        vehicle_id="1059", track_id=seq, server_id="edge_3", previous_server_id="edge_2", access_server_id="edge_2",
        migrated=True, expected_latency=0.09375, deadline=0.1875, migration_cost=0.25,
    )


def _task(seq: int) -> m.TaskRequest:
    return m.TaskRequest(vehicle_id=f"v_{seq}", size_bits=5.6e6 + seq, cycles=1.68e9, deadline=0.1875)


def _allocation(seq: int) -> m.ResourceAllocation:
    return m.ResourceAllocation(vehicle_id=f"v_{seq}", server_id="edge_3", bandwidth=2.5e6 + seq, cpu_frequency=7.5e9,
                                expected_latency=0.125, deadline=0.1875)


def _layout(seq: int) -> m.Layout:
    return m.Layout(
        header=_header(seq), name=f"pilot_{seq}", origin_latitude=39.9087, origin_longitude=116.46,
        area=[-1500.0, -1500.0, 1500.0, -1500.0, 1500.0, 1500.0],
        rsus=[m.RsuDescription(rsu_id="rsu_00", site_id="site_0", x=450.0, y=350.0, z=6.0, yaw=0.5, range=80.0)],
        cavs=[m.CavDescription(cav_id="cav_7", lidar_height=1.9, range=60.0)],
        edge_servers=[m.EdgeServerDescription(server_id="edge_0", site_id="site_0", x=-750.0, y=0.0,
                                              coverage_radius=150.0, cpu_frequency=3.0e9)],
        sites=[m.SiteDescription(site_id="site_0", polygon=[-1500.0, -1500.0, 0.0, -1500.0, 0.0, 1500.0])],
        cloud_x=0.0, cloud_y=0.0, cloud_cpu_frequency=3.5e9,
    )


def _signal(seq: int) -> m.SignalState:
    return m.SignalState(signal_id=f"J{seq}", position=Point(x=225.0 * (seq % 5), y=-450.0, z=0.0),
                         state="GGgrrrGGgrrr", phase=seq % 8, time_to_switch=12.5)


def _route_command(seq: int) -> m.RouteCommand:
    return m.RouteCommand(header=_header(seq), command_id=f"guidance-{seq}", vehicle_id="cav_1",
                          edges=["C2D2", "D2E2", "E2E3"], target_edge="", set_speed=True, speed=8.5,
                          validity=2.0)


def _route_status(seq: int) -> m.RouteCommandStatus:
    return m.RouteCommandStatus(header=_header(seq), command_id=f"guidance-{seq}", vehicle_id="cav_1",
                                status=m.RouteCommandStatus.STATUS_UNKNOWN_EDGE,
                                reason="unknown edge: 'X9' is not a road of beijing_cbd", route=["C2D2", "D2E2"],
                                road="C2D2")


def _route_request(seq: int) -> m.RouteRequest:
    return m.RouteRequest(header=_header(seq), request_id=f"req-{seq}", vehicle_id="cav_1", destination_edge="E2E3",
                          current_edge="C2D2", cancel=False)


def _guidance_status(seq: int) -> m.RouteGuidanceStatus:
    return m.RouteGuidanceStatus(header=_header(seq), request_id=f"req-{seq}", vehicle_id="cav_1",
                                 status=m.RouteGuidanceStatus.STATUS_REROUTED, reason="", command_id=f"guidance-{seq}",
                                 edges=["C2D2", "D2E2", "E2E3"], expected_travel_time=95.5, gain=31.25)


def _warning(seq: int) -> m.CollisionWarning:
    return m.CollisionWarning(header=_header(seq), warning_id=f"{seq}-7-1202000000.5", state=seq % 3,
                              track_id=seq, vehicle_id="cav_2", other_track_id=7, other_vehicle_id="",
                              kind=m.CollisionWarning.KIND_CROSSING, time_to_conflict=2.25, post_encroachment_time=0.5,
                              probability=0.875, min_distance=-1.25, conflict_point=Point(x=12.5, y=-3.0, z=0.0),
                              should_yield=True)


@dataclass(frozen=True)
class InterfaceSample:
    """How to build message ``seq`` of one interface, and how to read ``seq`` back from a received one."""

    type: type
    build: Callable[[int], object]
    seq_of: Callable[[object], int]


SAMPLES: dict[str, InterfaceSample] = {
    "SourceFrame": InterfaceSample(m.SourceFrame, _source_frame, lambda x: x.sensor_stamp.sec - 1_202_000_000),
    "DetectedObject": InterfaceSample(m.DetectedObject, _detected, lambda x: x.num_points),
    "DetectedObjectArray": InterfaceSample(
        m.DetectedObjectArray,
        lambda s: m.DetectedObjectArray(
            header=_header(s), source_id="rsu_03", source_type=m.DetectedObjectArray.SOURCE_RSU,
            sensor_pose=Pose(position=Point(x=1.0, y=2.0, z=5.5), orientation=_yaw(1.0)), sensor_range=80.0,
            objects=[_detected(s), _detected(s + 1)], provenance=_source_frame(s),
            visibility_bins=4, visibility_cell_m=1.0 + 0.5 * (s % 3),
            visibility_clear=[(s * 37 + k) % 256 for k in range(6)],
            visibility_blocked=[12.5, float("inf"), 3.0 + s % 5, 80.0],
        ),
        lambda x: x.objects[0].num_points,
    ),
    "TrackedObject": InterfaceSample(m.TrackedObject, _tracked, lambda x: x.track_id),
    "TrackedObjectArray": InterfaceSample(
        m.TrackedObjectArray,
        lambda s: m.TrackedObjectArray(
            header=_header(s), twin_id="global", objects=[_tracked(s), _tracked(s + 7)],
            provenance=[_source_frame(s)],
        ),
        lambda x: x.objects[0].track_id,
    ),
    "TwinEntity": InterfaceSample(m.TwinEntity, _entity, lambda x: x.messages_received - 100),
    "TwinStateArray": InterfaceSample(
        m.TwinStateArray,
        lambda s: m.TwinStateArray(header=_header(s), twin_id="local/site_0", entities=[_entity(s)]),
        lambda x: x.entities[0].messages_received - 100,
    ),
    "EdgeServerState": InterfaceSample(m.EdgeServerState, _server, lambda x: x.vehicles_served),
    "EdgeServerStateArray": InterfaceSample(
        m.EdgeServerStateArray,
        lambda s: m.EdgeServerStateArray(header=_header(s), servers=[_server(s), _server(s + 1)]),
        lambda x: x.servers[0].vehicles_served,
    ),
    "OffloadDecision": InterfaceSample(m.OffloadDecision, _decision, lambda x: x.track_id),
    "OffloadDecisionArray": InterfaceSample(
        m.OffloadDecisionArray,
        lambda s: m.OffloadDecisionArray(
            header=_header(s), policy="actor_critic", slot_duration=1.0, deficit_queue=0.5, migration_budget=0.1875,
            decisions=[_decision(s)],
        ),
        lambda x: x.decisions[0].track_id,
    ),
    "MigrationEvent": InterfaceSample(
        m.MigrationEvent,
        lambda s: m.MigrationEvent(
            header=_header(s), twin_id=f"twin_{s}", from_host="edge_1", to_host="cloud", size_bytes=2.5e7,
            transfer_time=0.75, reason="placement",
        ),
        lambda x: int(x.twin_id.split("_")[1]),
    ),
    "HandoverPrediction": InterfaceSample(
        m.HandoverPrediction,
        lambda s: m.HandoverPrediction(
            vehicle_id=str(s), current_server_id="edge_1", predicted_server_id="edge_4", probability=0.75,
            horizon=30.0,
        ),
        lambda x: int(x.vehicle_id),
    ),
    "LoadForecast": InterfaceSample(
        m.LoadForecast,
        lambda s: m.LoadForecast(server_id=f"edge_{s}", current_load=4.0, predicted_load=6.5, horizon=10.0),
        lambda x: int(x.server_id.split("_")[1]),
    ),
    "RelationGraph": InterfaceSample(
        m.RelationGraph,
        lambda s: m.RelationGraph(
            header=_header(s), node_ids=["1059", "edge_1", "rsu_00"],
            node_kinds=[m.TwinEntity.KIND_VEHICLE, m.TwinEntity.KIND_EDGE_SERVER, m.TwinEntity.KIND_RSU],
            edge_source=[0, 2], edge_target=[1, 1],
            edge_kinds=[m.RelationGraph.EDGE_VEHICLE_SERVER, m.RelationGraph.EDGE_RSU_SERVER],
            edge_weights=[120.5, 80.0],
            handovers=[m.HandoverPrediction(vehicle_id="1059", current_server_id="edge_1",
                                            predicted_server_id="edge_2", probability=0.5, horizon=10.0)],
            load_forecasts=[m.LoadForecast(server_id="edge_1", current_load=3.0, predicted_load=2.0, horizon=10.0)],
            model_id="relation_gnn@1", model_updates=s,
        ),
        lambda x: x.model_updates,
    ),
    "RsuDescription": InterfaceSample(
        m.RsuDescription, lambda s: m.RsuDescription(rsu_id=f"rsu_{s}", site_id="site_0", x=1.0, y=2.0, z=6.0,
                                                     yaw=0.25, range=80.0),
        lambda x: int(x.rsu_id.split("_")[1]),
    ),
    "CavDescription": InterfaceSample(
        m.CavDescription, lambda s: m.CavDescription(cav_id=f"cav_{s}", lidar_height=1.9, range=60.0),
        lambda x: int(x.cav_id.split("_")[1]),
    ),
    "EdgeServerDescription": InterfaceSample(
        m.EdgeServerDescription,
        lambda s: m.EdgeServerDescription(server_id=f"edge_{s}", site_id="site_1", x=3.0, y=4.0, coverage_radius=150.0,
                                          cpu_frequency=2.5e9),
        lambda x: int(x.server_id.split("_")[1]),
    ),
    "SiteDescription": InterfaceSample(
        m.SiteDescription, lambda s: m.SiteDescription(site_id=f"site_{s}", polygon=[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]),
        lambda x: int(x.site_id.split("_")[1]),
    ),
    "Layout": InterfaceSample(m.Layout, _layout, lambda x: int(x.name.split("_")[1])),
    "TaskRequest": InterfaceSample(m.TaskRequest, _task, lambda x: int(x.vehicle_id.split("_")[1])),
    "TaskRequestArray": InterfaceSample(
        m.TaskRequestArray, lambda s: m.TaskRequestArray(header=_header(s), tasks=[_task(s), _task(s + 1)]),
        lambda x: int(x.tasks[0].vehicle_id.split("_")[1]),
    ),
    "ResourceAllocation": InterfaceSample(m.ResourceAllocation, _allocation,
                                          lambda x: int(x.vehicle_id.split("_")[1])),
    "ResourceAllocationArray": InterfaceSample(
        m.ResourceAllocationArray,
        lambda s: m.ResourceAllocationArray(
            header=_header(s), site_id="site_0", policy="cddpg", task_source="diten", slot_duration=1.0,
            decision_time=0.0009765625, model_updates=s, server_ids=["edge_3", "edge_4"],
            server_cpu_frequency=[2.0e10, 1.5e10], server_bandwidth=[2.0e7, 2.0e7],
            allocations=[_allocation(s), _allocation(s + 1)],
        ),
        lambda x: x.model_updates,
    ),
    "SignalState": InterfaceSample(m.SignalState, _signal, lambda x: int(x.signal_id[1:])),
    "SignalStateArray": InterfaceSample(
        m.SignalStateArray, lambda s: m.SignalStateArray(header=_header(s), signals=[_signal(s), _signal(s + 1)]),
        lambda x: int(x.signals[0].signal_id[1:]),
    ),
    "RouteCommand": InterfaceSample(m.RouteCommand, _route_command, lambda x: int(x.command_id.split("-")[1])),
    "RouteCommandStatus": InterfaceSample(m.RouteCommandStatus, _route_status,
                                          lambda x: int(x.command_id.split("-")[1])),
    "RouteRequest": InterfaceSample(m.RouteRequest, _route_request, lambda x: int(x.request_id.split("-")[1])),
    "RouteGuidanceStatus": InterfaceSample(m.RouteGuidanceStatus, _guidance_status,
                                           lambda x: int(x.request_id.split("-")[1])),
    "CollisionWarning": InterfaceSample(m.CollisionWarning, _warning, lambda x: x.track_id),
    "CollisionWarningArray": InterfaceSample(
        m.CollisionWarningArray, lambda s: m.CollisionWarningArray(
            header=_header(s), twin_id="global", warnings=[_warning(s), _warning(s + 1)], tracks=40, pairs_sampled=3,
            decision_time=0.0078125), lambda x: x.warnings[0].track_id),
}
