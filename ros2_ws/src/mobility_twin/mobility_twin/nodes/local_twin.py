"""local_twin (one per edge site): fuses the site's sensors' detections into the site's twin.

The site's layout (its RSUs, edge servers, area; the CAVs of the deployment) comes from ``layout_file`` (the
site's layout.yaml) or the latched /infrastructure/layout (``layout_from_topic``); the sensors it fuses are
the input channels of ``input_channels_file`` (default: the shipped config/input_channels.yaml: the site's
RSUs on /rsu/<id>/detections, the CAVs on /cav/<id>/detections while inside the site, the connected
vehicles' own reports relayed by the site's edge servers on /edge/<server>/v2x). The edge servers' own
state reports arrive on ``server_report_topic``. Publishes ``/twin/local/<site>/objects``
(TrackedObjectArray: right after each fused frame, and at least every ``publish_period_s``; tracks predicted
to the publication time, so the twin shows the present, not the sensor's past), ``/twin/local/<site>/state``
(TwinStateArray: entity twins with their age of information) and ``/twin/local/<site>/edge_servers`` (the
server twins' estimates and deviations). ``stale_after_s`` may be changed at run time.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from functools import partial

from geometry_msgs.msg import Point
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, Provenance, decode_detections, encode_tracks, seconds_to_ns
from mobility_twin.ros.convert import from_time, to_time
from mobility_twin.ros.drain import AfterQueuedInput, EventPublication
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import Every, count_summary, guarded
from mobility_twin.ros.node_params import InputCheckParams, LayoutParams, StateParams, TwinOutputParams
from mobility_twin.ros.params import bind_dynamic, declare_config, field
from mobility_twin.ros.qos import TWIN_STATE
from mobility_twin.ros.state import load_state, save_state
from mobility_twin.ros.tables import table_to_detections, tracks_to_table
from mobility_twin.tracking import TrackerConfig
from mobility_twin.twin import LocalTwin, LocalTwinConfig, default_channels, load_channels
from mobility_twin.twin.validation import InputValidator
from mobility_twin_core import Layout, LayoutError
from mobility_twin_msgs.msg import (
    DetectedObjectArray,
    EdgeServerState,
    EdgeServerStateArray,
    TrackedObjectArray,
    TwinEntity,
    TwinStateArray,
)


@dataclass(frozen=True)
class LocalTwinNodeConfig(LayoutParams, TwinOutputParams, InputCheckParams, StateParams):
    CONFIG_FILE = "config/local_twin.yaml"
    STATE_FILE = "local_twin.json"

    site_id: str = field("", "the edge site this twin covers (required)")
    input_channels_file: str = field("", "input-channel file: the sensors this twin fuses ('' = the shipped "
                                         "config/input_channels.yaml)")
    cavs: tuple[str, ...] = field([], "CAV ids to listen to (empty: every CAV of the layout)")
    server_report_topic: str = field(topics.EDGE_SERVER_REPORTS, "EdgeServerStateArray with the servers' own reports")
    stale_after_s: float = field(LocalTwinConfig.stale_after_s,
                                 "an entity twin older than this is stale (s)", low=0.0, high=3600.0, dynamic=True)
    area_margin_m: float = field(LocalTwinConfig.area_margin_m,
                                 "frames of moving sensors (CAVs) are fused this far outside the site (m)",
                                 low=0.0, high=10000.0)
    gate_chi2: float = field(TrackerConfig.gate_chi2,
                             "tracker: Mahalanobis gate (chi-square, 2 dof)", low=0.1, high=1000.0)
    confirm_existence: float = field(TrackerConfig.confirm_existence,
                                     "tracker: existence probability at which a track is confirmed",
                                     low=0.01, high=0.999)
    max_coast_s: float = field(TrackerConfig.max_coast_s,
                               "tracker: a track lives this long without detections (s)", low=0.0, high=60.0)
    reid_window_s: float = field(TrackerConfig.reid_window_s,
                                 "tracker: a lost track gives its id back to a detection that fits it this long (s)",
                                 low=0.0, high=600.0)
    outage_keep_s: float = field(TrackerConfig.outage_keep_s,
                                 "tracker: ... this long when it was lost while a sensor that saw it was silent (s)",
                                 low=0.0, high=3600.0)
    outage_coast_s: float = field(TrackerConfig.outage_coast_s,
                                  "tracker: a track whose every sensor fell silent coasts, shown, this long (s)",
                                  low=0.0, high=3600.0)
    reorder_window_s: float = field(TrackerConfig.reorder_window_s,
                                    "tracker: late frames up to this age are fused in time order (s)",
                                    low=0.0, high=10.0)
    demand_hz_per_vehicle: float = field(LocalTwinConfig.demand_hz_per_vehicle,
                                         "CPU a served vehicle needs, for the server-load estimate (Hz)",
                                         low=0.0, high=1e12)
    restore_keep_s: float = field(20.0, "after a restart, saved tracks wait this long to be found again under their "
                                        "old ids (s)", low=0.0, high=3600.0)

    def check(self) -> None:
        if not self.site_id:
            raise ValueError("parameter 'site_id' is required")


class LocalTwinNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("local_twin", **kwargs)
        self.config = declare_config(self, LocalTwinNodeConfig)
        cfg = self.config
        self.exit_code: int | None = None
        self.twin: LocalTwin | None = None
        self._inputs: list = []  # the subscriptions of the layout's sensors
        self.last_stamp = -1.0
        self.counts: Counter = Counter()
        self.validator = InputValidator()
        self.log_every = Every(cfg.log_period_s)
        try:
            self.channels = load_channels(cfg.input_channels_file) if cfg.input_channels_file else default_channels()
        except LayoutError as err:
            raise ConfigurationError(f"parameter 'input_channels_file': {err}") from None
        site = cfg.site_id
        self.objects_pub = self.create_publisher(TrackedObjectArray, topics.local_objects(site), TWIN_STATE)
        self.state_pub = self.create_publisher(TwinStateArray, topics.local_state(site), TWIN_STATE)
        self.servers_pub = self.create_publisher(EdgeServerStateArray, topics.local_edge_servers(site), TWIN_STATE)
        self.create_subscription(EdgeServerStateArray, cfg.server_report_topic,
                                 guarded(self, self.counts, "server report")(self.on_server_reports), TWIN_STATE)
        self.events = EventPublication(self, self.publish_objects, cfg.min_publish_interval_s)
        self._arrived: list = []  # frames (frame, channel, member) decoded and checked, not yet fused
        self._fuse_arrived = AfterQueuedInput(self, guarded(self, self.counts, "fusion")(self.fuse_arrived))
        bind_dynamic(self, on_change=self._apply)
        self.create_timer(cfg.publish_period_s, self.on_heartbeat)
        self.create_timer(cfg.state_period_s, self.publish_state)
        self.state_file = cfg.state_file(self)
        if self.state_file is not None:
            self.create_timer(cfg.save_period_s, self.save_state, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.layout = cfg.layout_source(self, self._start)

    def _apply(self, cfg: LocalTwinNodeConfig) -> None:
        if self.twin is not None:
            self.twin.config = replace(self.twin.config, stale_after_s=cfg.stale_after_s)

    # ---------------------------------------------------------------------------------- layout
    def _start(self, layout: Layout) -> None:
        cfg = self.config
        try:
            site = layout.site(cfg.site_id)
        except LayoutError as err:
            self.get_logger().fatal(f"parameter 'site_id': {err}")
            self.exit_code = 2
            return
        if self.twin is not None:  # the topic's layout replaces the cached one the node started with: the tracks go
            self.fuse_arrived()    # on, under their ids, through the saved state (resumed below)
            self.save_state()
            for sub in self._inputs:
                self.destroy_subscription(sub)
            self._inputs = []
        rsus = [r.rsu_id for r in layout.rsus_of(cfg.site_id)]
        servers = layout.servers_of(cfg.site_id)
        cavs = list(cfg.cavs) or [c.cav_id for c in layout.cavs]
        self.validator = InputValidator(cfg.input_limits(layout.area))
        members = {"rsus": rsus, "cavs": cavs, "edge_servers": [s.server_id for s in servers]}
        tracker = TrackerConfig(gate_chi2=cfg.gate_chi2, confirm_existence=cfg.confirm_existence, max_coast_s=cfg.max_coast_s,
                                reorder_window_s=cfg.reorder_window_s, reid_window_s=cfg.reid_window_s,
                                outage_keep_s=cfg.outage_keep_s, outage_coast_s=cfg.outage_coast_s)
        self.twin = LocalTwin(LocalTwinConfig(cfg.site_id, rsus=tuple(rsus), cavs=tuple(cavs), area=site.polygon,
                                              area_margin_m=cfg.area_margin_m, stale_after_s=cfg.stale_after_s,
                                              tracker=tracker, demand_hz_per_vehicle=cfg.demand_hz_per_vehicle),
                              servers, channels=self.channels)
        saved = load_state(self.state_file, cfg.resume_max_age_s, self.get_logger())
        if saved is not None and saved.get("site_id") == cfg.site_id:
            try:
                n = self.twin.tracker.restore(saved["tracker"], cfg.restore_keep_s)
                self.get_logger().info(f"resumed {n} tracks (and the id counter) from {self.state_file}")
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                self.get_logger().warning(f"saved state {self.state_file} is malformed ({err}): starting afresh")
        subscribed = []
        for channel in self.channels:
            for member in (channel.ids if channel.members == "ids" else members[channel.members]):
                callback = guarded(self, self.counts, f"{channel.name}/{member}")(
                    partial(self.on_detections, channel.name, member))
                self._inputs.append(self.create_subscription(DetectedObjectArray, channel.topic_of(member), callback,
                                                             TWIN_STATE, raw=True))
                subscribed.append(channel.topic_of(member))
        self.get_logger().info(f"site {cfg.site_id}: RSUs {rsus}, CAVs {cavs}, servers {members['edge_servers']}; "
                               f"channels {[c.name for c in self.channels]} ({len(subscribed)} topics)")

    def save_state(self) -> None:
        if self.state_file is not None and self.twin is not None and hasattr(self.twin.tracker, "saved"):
            save_state(self.state_file, {"site_id": self.config.site_id, "tracker": self.twin.tracker.saved()},
                       self.get_logger())

    def destroy_node(self) -> None:
        self.fuse_arrived()
        self.save_state()
        super().destroy_node()

    # ---------------------------------------------------------------------------------- input
    def on_detections(self, channel: str, member: str, data: bytes) -> None:
        received = time.time()
        try:
            frame = table_to_detections(decode_detections(data))
        except CdrError as err:
            self.counts["undecodable"] += 1
            self.get_logger().warning(f"undecodable DetectedObjectArray on {channel}/{member}: {err}",
                                      throttle_duration_sec=5.0)
            return
        before = sum(self.validator.rejected.values())
        frame = self.validator.detections(frame, self._now())
        if sum(self.validator.rejected.values()) > before:
            self.get_logger().warning(f"implausible input on {channel}/{member} refused: {self.validator.summary()}",
                                      throttle_duration_sec=5.0)
        if frame is None:
            return
        # fused once the input queued with it is handled: the relays of one instant, which arrive together, are
        # then fused together (LocalTwin.ingest_many)
        self._arrived.append((frame.with_stage("local_received", received), channel, member))
        self._fuse_arrived.request()

    def fuse_arrived(self) -> None:
        arrived, self._arrived = self._arrived, []
        if self.twin is not None and any(self.twin.ingest_many(arrived)) and self.config.event_publish:
            self.events.input_fused()

    def on_server_reports(self, msg: EdgeServerStateArray) -> None:
        if self.twin is None:
            return
        stamp = from_time(msg.header.stamp)
        if not self.validator.stamp_ok(stamp, self._now()):
            return
        for s in msg.servers:
            if s.server_id not in self.twin.servers:
                continue
            if not (math.isfinite(s.load) and 0.0 <= s.load <= 1.0):
                self.counts["implausible_server_report"] += 1
                continue
            self.twin.report_server(s.server_id, stamp, s.load, s.vehicles_served)

    # ---------------------------------------------------------------------------------- output
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_heartbeat(self) -> None:
        if self.twin is not None and self.events.since_last() >= 0.5 * self.config.publish_period_s:
            self.events.publish()
        if self.twin is not None and self.log_every.due():
            refused = self.counts + self.validator.rejected + self.twin.stats.rejected
            if refused:
                self.get_logger().info(f"{self.twin.stats.frames} frames fused; refused: {count_summary(refused)}")

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
            spec = s.server
            servers.servers.append(EdgeServerState(
                server_id=spec.server_id, position=Point(x=spec.x, y=spec.y),
                coverage_radius=float(spec.coverage_radius_m), cpu_frequency_max=spec.cpu_hz,
                cpu_frequency_estimate=spec.cpu_hz * (1.0 - s.estimated_load),
                cpu_frequency_deviation=s.deviation_hz, load=float(s.estimated_load),
                vehicles_served=int(s.estimated_served),
            ))
        self.servers_pub.publish(servers)


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": LocalTwinNodeConfig}


def main() -> int:
    return run_node(LocalTwinNode)
