"""global_twin (cloud): the local twins federated into one twin with global track ids.

Subscribes ``/twin/local/<site>/objects``, ``.../state`` and ``.../edge_servers`` of every site (given by
``sites``, or every site of the layout: ``layout_file`` or the latched /infrastructure/layout with
``layout_from_topic``), and publishes ``/twin/global/objects`` (right after each local
update and at least every ``publish_period_s``), ``/twin/global/state`` (one entity per local twin, stale
when silent for ``stale_after_s``, plus the entities the local twins report) and
``/twin/global/edge_servers``. A silent site is logged once when it goes stale and once when it is back.
``stale_after_s``, ``track_ttl_s``, ``reid_window_s`` and ``dormant_show_s`` may be changed at run time.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, Provenance, decode_tracks, encode_tracks
from mobility_twin.ros.convert import to_time
from mobility_twin.ros.drain import EventPublication
from mobility_twin.ros.entry import run_node
from mobility_twin.ros.guard import Every, count_summary, guarded
from mobility_twin.ros.node_params import InputCheckParams, LayoutParams, StateParams, TwinOutputParams
from mobility_twin.ros.params import bind_dynamic, declare_config, field
from mobility_twin.ros.qos import TWIN_STATE
from mobility_twin.ros.state import load_state, save_state
from mobility_twin.ros.tables import table_to_tracks, tracks_to_table
from mobility_twin.twin import GlobalTwin, GlobalTwinConfig
from mobility_twin.twin.validation import InputValidator
from mobility_twin_core import EntityKind, Layout
from mobility_twin_msgs.msg import EdgeServerStateArray, TrackedObjectArray, TwinEntity, TwinStateArray


@dataclass(frozen=True)
class GlobalTwinNodeConfig(LayoutParams, TwinOutputParams, InputCheckParams, StateParams):
    CONFIG_FILE = "config/global_twin.yaml"
    STATE_FILE = "global_twin.json"

    sites: tuple[str, ...] = field([], "site ids of the local twins (empty: every site of the layout)")
    layout_file: str = field("", "the deployment's layout.yaml, for the site ids when sites is empty")
    stale_after_s: float = field(1.0, "a local twin silent this long is stale (s)", low=0.0, high=3600.0,
                                 dynamic=True)
    track_ttl_s: float = field(0.3, "a track no site reports any more is shown this long (s)", low=0.0,
                               high=3600.0, dynamic=True)
    reid_window_s: float = field(5.0, "... and kept hidden this long, so a site finding it again keeps its id (s)",
                                 low=0.0, high=3600.0, dynamic=True)
    dormant_show_s: float = field(15.0, "a track of a stale site is shown, predicted, this long (s)", low=0.0,
                                  high=3600.0, dynamic=True)
    merge_after_s: float = field(1.0, "two sites' global tracks of one vehicle that stay together this long are "
                                      "merged (s; 0 = never)", low=0.0, high=3600.0, dynamic=True)


class GlobalTwinNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("global_twin", **kwargs)
        self.config = declare_config(self, GlobalTwinNodeConfig)
        cfg = self.config
        self.exit_code: int | None = None
        self.state_file = cfg.state_file(self)
        self.twin = self._resume(cfg) or GlobalTwin(self._twin_config(cfg))
        self.last_stamp = -1.0
        self.pending: list[Provenance] = []
        self.local_states: dict[str, TwinStateArray] = {}
        self.local_servers: dict[str, EdgeServerStateArray] = {}
        self.subscribed: set[str] = set()
        self.counts: Counter = Counter()
        self.validator = InputValidator(cfg.input_limits())
        self.log_every = Every(cfg.log_period_s)
        self.objects_pub = self.create_publisher(TrackedObjectArray, topics.GLOBAL_OBJECTS, TWIN_STATE)
        self.state_pub = self.create_publisher(TwinStateArray, topics.GLOBAL_STATE, TWIN_STATE)
        self.servers_pub = self.create_publisher(EdgeServerStateArray, topics.GLOBAL_EDGE_SERVERS, TWIN_STATE)
        bind_dynamic(self, on_change=lambda new: setattr(self.twin, "config", self._twin_config(new)))
        for site in cfg.sites:
            self._subscribe(site)
        if not cfg.sites:
            self.layout = cfg.layout_source(self, self._on_layout)
        self.events = EventPublication(self, self.publish_objects, cfg.min_publish_interval_s)
        self.create_timer(cfg.publish_period_s, self.on_heartbeat)
        self.create_timer(cfg.state_period_s, self.publish_state)
        if self.state_file is not None:
            self.create_timer(cfg.save_period_s, self.save_state, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _resume(self, cfg: GlobalTwinNodeConfig) -> GlobalTwin | None:
        saved = load_state(self.state_file, cfg.resume_max_age_s, self.get_logger())
        if saved is None:
            return None
        try:
            twin = GlobalTwin.from_plain(saved, self._twin_config(cfg))
        except (KeyError, TypeError, ValueError) as err:
            self.get_logger().warning(f"saved state {self.state_file} is malformed ({err}): starting afresh")
            return None
        self.get_logger().info(f"resumed {len(twin)} global tracks and the links of {len(twin.dormant)} sites from "
                               f"{self.state_file}")
        return twin

    def save_state(self) -> None:
        if self.state_file is not None:
            save_state(self.state_file, self.twin.to_plain(), self.get_logger())

    def destroy_node(self) -> None:
        self.save_state()
        super().destroy_node()

    @staticmethod
    def _twin_config(cfg: GlobalTwinNodeConfig) -> GlobalTwinConfig:
        return GlobalTwinConfig(stale_after_s=cfg.stale_after_s, track_ttl_s=cfg.track_ttl_s,
                                reid_window_s=cfg.reid_window_s, dormant_show_s=cfg.dormant_show_s,
                                merge_after_s=cfg.merge_after_s)

    def _on_layout(self, layout: Layout) -> None:
        self.validator = InputValidator(self.config.input_limits(layout.area))
        for site in layout.sites:
            self._subscribe(site.site_id)

    def _subscribe(self, site: str) -> None:
        if site in self.subscribed:
            return
        self.subscribed.add(site)
        guard = guarded(self, self.counts, f"local twin {site}")
        self.create_subscription(TrackedObjectArray, topics.local_objects(site),
                                 guard(partial(self.on_local_objects, site)), TWIN_STATE, raw=True)
        self.create_subscription(TwinStateArray, topics.local_state(site),
                                 guard(lambda m, s=site: self.local_states.__setitem__(s, m)), TWIN_STATE)
        self.create_subscription(EdgeServerStateArray, topics.local_edge_servers(site),
                                 guard(lambda m, s=site: self.local_servers.__setitem__(s, m)), TWIN_STATE)
        self.get_logger().info(f"federating local twin {site}")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_local_objects(self, site: str, data: bytes) -> None:
        received = time.time()
        try:
            table = decode_tracks(data)
        except CdrError as err:
            self.counts["undecodable"] += 1
            self.get_logger().warning(f"undecodable TrackedObjectArray of {site}: {err}", throttle_duration_sec=5.0)
            return
        if table.twin_id != f"local/{site}":  # the topic says which site: a message may not speak for another
            self.counts["twin_id_mismatch"] += 1
            self.get_logger().warning(f"/twin/local/{site}/objects carried twin_id {table.twin_id!r}: refused",
                                      throttle_duration_sec=5.0)
            return
        before = sum(self.validator.rejected.values())
        received_tracks = table_to_tracks(table)
        tracks = self.validator.tracks(received_tracks, table.stamp, self._now())
        if sum(self.validator.rejected.values()) > before:
            self.get_logger().warning(f"implausible update of {site} refused: {self.validator.summary()}",
                                      throttle_duration_sec=5.0)
        if tracks is None:
            return
        # the local ids of refused tracks keep their links: one bad value must not unlink (renumber) a vehicle
        refused_ids = np.setdiff1d(received_tracks.ids, tracks.ids) if len(tracks) < len(received_tracks) else ()
        was_stale = site in self.twin.sites and self.twin.sites[site].stale
        if not self.twin.ingest(site, table.stamp, tracks, keep_linked=refused_ids):
            self.counts["out_of_order"] += 1
            self.get_logger().warning(f"update of {site} stamped no later than its previous one: dropped",
                                      throttle_duration_sec=5.0)
            return
        if was_stale:
            self.get_logger().info(f"local twin {site} is back")
        self.pending += [Provenance(p.source_id, p.sensor_stamp_ns, (*p.stages, ("global_received", received)))
                         for p in table.provenance]
        if self.config.event_publish:
            self.events.input_fused()

    def on_heartbeat(self) -> None:
        for site in self.twin.update_staleness(self._now()):
            self.get_logger().warning(f"local twin {site} is silent: stale, its tracks age out")
        if self.events.since_last() >= 0.5 * self.config.publish_period_s:
            self.events.publish()
        if self.log_every.due():
            refused = self.counts + self.validator.rejected
            if refused:
                self.get_logger().info("refused: " + count_summary(refused))

    def publish_objects(self) -> None:
        stamp = max(self._now(), self.last_stamp + 1e-6)
        self.last_stamp = stamp
        tracks = self.twin.tracks_at(stamp)
        sites = self.twin.site_of_track()
        wall = time.time()
        provenance = [Provenance(p.source_id, p.sensor_stamp_ns, (*p.stages, ("global_twin", wall)))
                      for p in self.pending]
        self.pending = []
        table = tracks_to_table(tracks, stamp, "global", site_id=[sites.get(int(i), "") for i in tracks.ids],
                                provenance=provenance)
        self.objects_pub.publish(encode_tracks(table))

    def publish_state(self) -> None:
        now = self._now()
        header = Header(stamp=to_time(now), frame_id="map")
        msg = TwinStateArray(header=header, twin_id="global")
        for site in self.twin.sites.values():
            age = now - site.last_stamp
            msg.entities.append(TwinEntity(entity_id=site.site_id, kind=int(EntityKind.LOCAL_TWIN), site_id=site.site_id,
                                           last_update=to_time(max(site.last_stamp, 0.0)),
                                           age_of_information=float(min(age, 1e9)), stale=site.stale,
                                           messages_received=site.snapshots, messages_rejected=site.rejected))
        for local in self.local_states.values():
            msg.entities.extend(local.entities)
        self.state_pub.publish(msg)
        servers = EdgeServerStateArray(header=header)
        for local in self.local_servers.values():
            servers.servers.extend(local.servers)
        self.servers_pub.publish(servers)


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": GlobalTwinNodeConfig}


def main() -> int:
    return run_node(GlobalTwinNode)
