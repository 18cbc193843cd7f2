"""local_twin (one per edge site): fuses its RSUs' and CAVs' detections into the site's twin.

Subscribes ``/rsu/<id>/detections`` of its RSUs, ``/cav/<id>/detections`` of the CAVs (accepted while
inside the site), ``/edge/<server>/v2x`` (connected vehicles' own reports relayed by the site's servers)
and the edge servers' own reports (``server_report_topic``). Publishes
``/twin/local/<site>/objects`` (TrackedObjectArray: right after each fused frame, and at least every
``publish_period_s``; tracks predicted to the publication time, so the twin shows the present, not the
sensor's past), ``/twin/local/<site>/state`` (TwinStateArray: entity twins with their age of
information) and ``/twin/local/<site>/edge_servers`` (the server twins' estimates and deviations).

The site's layout (RSUs, CAVs, area, servers) is given by parameters; in simulation it may come from the
latched /sim/world (``layout_from_sim``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from geometry_msgs.msg import Point
from rclpy.node import Node
from std_msgs.msg import Header, String

from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, Provenance, decode_detections, encode_tracks, seconds_to_ns
from mobility_twin.ros.convert import from_time, to_time
from mobility_twin.ros.drain import EventPublication
from mobility_twin.ros.entry import run_node
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import LATCHED, TWIN_STATE
from mobility_twin.ros.tables import table_to_detections, tracks_to_table
from mobility_twin.tracking import TrackerConfig
from mobility_twin.twin import LocalTwin, LocalTwinConfig, ServerSpec
from mobility_twin_msgs.msg import (
    DetectedObjectArray,
    EdgeServerState,
    EdgeServerStateArray,
    TrackedObjectArray,
    TwinEntity,
    TwinStateArray,
)


@dataclass(frozen=True)
class LocalTwinNodeConfig:
    site_id: str = field("site_0", "the edge site this twin covers")
    rsus: tuple[str, ...] = field([], "RSU ids of the site (empty: from /sim/world when layout_from_sim)")
    cavs: tuple[str, ...] = field([], "CAV ids to listen to (empty: all CAVs of /sim/world when layout_from_sim)")
    area: tuple[float, ...] = field([], "site polygon in map as x0, y0, x1, y1, ... (empty: from /sim/world)")
    server_ids: tuple[str, ...] = field([], "edge servers of the site (empty: from /sim/world)")
    server_specs: tuple[float, ...] = field([], "per server: x, y, coverage radius (m), CPU (Hz), flattened")
    layout_from_sim: bool = field(True, "complete a missing layout from the latched /sim/world")
    server_report_topic: str = field(topics.SIM_EDGE_SERVERS, "EdgeServerStateArray with the servers' own reports")
    publish_period_s: float = field(0.1, "publish tracks at least this often (s)")
    event_publish: bool = field(True, "also publish right after each fused frame (lowest latency)")
    min_publish_interval_s: float = field(0.0, "event publications at least this far apart (s; 0: right after "
                                               "the queued input is fused); inputs in between go out together")
    state_period_s: float = field(0.5, "period of the state and edge-server twins (s)")
    stale_after_s: float = field(1.0, "an entity twin older than this is stale (s)")
    gate_chi2: float = field(13.8, "tracker: Mahalanobis gate (chi-square, 2 dof)")
    confirm_hits: int = field(3, "tracker: hits to confirm a track")
    max_coast_s: float = field(1.5, "tracker: a track lives this long without detections (s)")
    reorder_window_s: float = field(0.5, "tracker: late frames up to this age are fused in time order (s)")


class LocalTwinNode(Node):
    def __init__(self) -> None:
        super().__init__("local_twin")
        self.config = declare_config(self, LocalTwinNodeConfig)
        cfg = self.config
        self.exit_code: int | None = None
        self.twin: LocalTwin | None = None
        self.last_stamp = -1.0
        self.bad_messages = 0
        site = cfg.site_id
        self.objects_pub = self.create_publisher(TrackedObjectArray, topics.local_objects(site), TWIN_STATE)
        self.state_pub = self.create_publisher(TwinStateArray, topics.local_state(site), TWIN_STATE)
        self.servers_pub = self.create_publisher(EdgeServerStateArray, topics.local_edge_servers(site), TWIN_STATE)
        self.create_subscription(EdgeServerStateArray, cfg.server_report_topic, self.on_server_reports, TWIN_STATE)
        if self._layout_complete():
            self._start(list(cfg.rsus), list(cfg.cavs), _pairs(cfg.area), self._servers_from_params())
        elif cfg.layout_from_sim:
            self.create_subscription(String, topics.SIM_WORLD, self.on_world, LATCHED)
            self.get_logger().info("waiting for the site layout on /sim/world")
        else:
            raise ValueError("parameters rsus, area and server_ids are required when layout_from_sim is false")
        self.events = EventPublication(self, self.publish_objects, cfg.min_publish_interval_s)
        self.create_timer(cfg.publish_period_s, self.on_heartbeat)
        self.create_timer(cfg.state_period_s, self.publish_state)

    # ---------------------------------------------------------------------------------- layout
    def _layout_complete(self) -> bool:
        cfg = self.config
        return bool(cfg.rsus) and bool(cfg.area) and (bool(cfg.server_ids) or not cfg.layout_from_sim)

    def _servers_from_params(self) -> list[ServerSpec]:
        ids, specs = self.config.server_ids, self.config.server_specs
        if len(specs) != 4 * len(ids):
            raise ValueError(f"server_specs needs 4 numbers per server (x, y, radius, cpu): {len(ids)} servers, "
                             f"{len(specs)} numbers")
        return [ServerSpec(i, *specs[4 * k:4 * k + 4]) for k, i in enumerate(ids)]

    def on_world(self, msg: String) -> None:
        if self.twin is not None:
            return
        world = json.loads(msg.data)
        site = next((s for s in world["sites"] if s["id"] == self.config.site_id), None)
        if site is None:
            self.get_logger().error(f"/sim/world has no site {self.config.site_id!r}")
            return
        rsus = list(self.config.rsus) or [r["id"] for r in world["rsus"] if r["site"] == self.config.site_id]
        cavs = list(self.config.cavs) or [c["id"] for c in world["cavs"]]
        area = _pairs(self.config.area) or [tuple(p) for p in site["polygon"]]
        servers = self._servers_from_params() if self.config.server_ids else [
            ServerSpec(e["id"], e["x"], e["y"], e["radius"], e["cpu_hz"]) for e in world["edge_servers"]
            if e["site"] == self.config.site_id]
        self._start(rsus, cavs, area, servers)

    def _start(self, rsus: list[str], cavs: list[str], area, servers: list[ServerSpec]) -> None:
        cfg = self.config
        tracker = TrackerConfig(gate_chi2=cfg.gate_chi2, confirm_hits=cfg.confirm_hits, max_coast_s=cfg.max_coast_s,
                                reorder_window_s=cfg.reorder_window_s)
        self.twin = LocalTwin(LocalTwinConfig(cfg.site_id, tuple(rsus), tuple(area), stale_after_s=cfg.stale_after_s,
                                              tracker=tracker), servers)
        for rsu in rsus:
            self.create_subscription(DetectedObjectArray, topics.rsu_detections(rsu), self.on_detections, TWIN_STATE,
                                     raw=True)
        for cav in cavs:
            self.create_subscription(DetectedObjectArray, topics.cav_detections(cav), self.on_detections, TWIN_STATE,
                                     raw=True)
        for server in servers:
            self.create_subscription(DetectedObjectArray, topics.edge_v2x(server.server_id), self.on_detections,
                                     TWIN_STATE, raw=True)
        self.get_logger().info(f"site {cfg.site_id}: RSUs {rsus}, CAVs {cavs}, servers {[s.server_id for s in servers]}")

    # ---------------------------------------------------------------------------------- input
    def on_detections(self, data: bytes) -> None:
        received = time.time()
        try:
            frame = table_to_detections(decode_detections(data))
        except CdrError as err:
            self.bad_messages += 1
            self.get_logger().warning(f"undecodable DetectedObjectArray: {err}", throttle_duration_sec=5.0)
            return
        frame = frame.with_stage("local_received", received)
        if self.twin.ingest(frame) and self.config.event_publish:
            self.events.input_fused()

    def on_server_reports(self, msg: EdgeServerStateArray) -> None:
        if self.twin is None:
            return
        stamp = from_time(msg.header.stamp)
        for s in msg.servers:
            if s.server_id in self.twin.servers:
                self.twin.report_server(s.server_id, stamp, s.load, s.vehicles_served)

    # ---------------------------------------------------------------------------------- output
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_heartbeat(self) -> None:
        if self.twin is not None and self.events.since_last() >= 0.5 * self.config.publish_period_s:
            self.events.publish()

    def publish_objects(self) -> None:
        twin = self.twin
        stamp = max(self._now(), twin.tracker.time, self.last_stamp + 1e-6)
        self.last_stamp = stamp
        snap = twin.snapshot(stamp)
        wall = time.time()
        provenance = [Provenance(src, seconds_to_ns(sensor_stamp), (*stages, ("local_twin", wall)))
                      for src, sensor_stamp, stages in snap.provenance]
        table = tracks_to_table(snap.tracks, stamp, f"local/{self.config.site_id}", site_id=self.config.site_id,
                                provenance=provenance)
        self.objects_pub.publish(encode_tracks(table))

    def publish_state(self) -> None:
        if self.twin is None:
            return
        now = max(self._now(), self.twin.tracker.time)
        snap_entities = [(e, e.age(now), e.age(now) > self.config.stale_after_s) for e in self.twin.entities.values()]
        header = Header(stamp=to_time(now), frame_id="map")
        msg = TwinStateArray(header=header, twin_id=f"local/{self.config.site_id}")
        for e, age, stale in snap_entities:
            ent = TwinEntity(entity_id=e.entity_id, kind=e.kind, site_id=self.config.site_id,
                             age_of_information=float(min(age, 1e9)), stale=stale, messages_received=e.received,
                             messages_rejected=e.rejected)
            if e.last_update > 0:
                ent.last_update = to_time(e.last_update)
            if e.x == e.x:  # not NaN
                ent.pose.position.x, ent.pose.position.y = float(e.x), float(e.y)
            msg.entities.append(ent)
        self.state_pub.publish(msg)
        servers = EdgeServerStateArray(header=header)
        for s in self.twin.servers.values():
            servers.servers.append(EdgeServerState(
                server_id=s.spec.server_id, position=Point(x=s.spec.x, y=s.spec.y),
                coverage_radius=float(s.spec.coverage_radius), cpu_frequency_max=s.spec.cpu_hz,
                cpu_frequency_estimate=s.spec.cpu_hz * (1.0 - s.estimated_load),
                cpu_frequency_deviation=s.deviation_hz, load=float(s.estimated_load),
                vehicles_served=int(s.estimated_served),
            ))
        self.servers_pub.publish(servers)


def _pairs(flat) -> list[tuple[float, float]]:
    if len(flat) % 2:
        raise ValueError(f"area needs x, y pairs, got {len(flat)} numbers")
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def main() -> int:
    return run_node(LocalTwinNode)
