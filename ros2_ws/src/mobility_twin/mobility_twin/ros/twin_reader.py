"""The twin-state adapter: what every node that acts on the twin reads, as one :class:`TwinSnapshot`.

Offloading, placement, the relation learner (and route guidance, resource allocation...) all act once per
slot on the newest state of a twin: its vehicles (``TrackedObjectArray``), its edge-server twins
(``EdgeServerStateArray``) and, for some, its RSUs (``TwinStateArray``). :class:`TwinReader` subscribes to
the three topics, keeps the newest raw message of the busy track topic (decoded once per use with the fast
codec, not per message), and :meth:`TwinReader.snapshot` turns them into the twin model's
:class:`~mobility_twin_core.TwinSnapshot`, or says why not:

* ``no_server_twins_yet`` / ``server_twins_stale`` / ``no_vehicles_yet`` / ``vehicles_stale`` /
  ``frame_mismatch``: the slot is skipped (counted and logged, throttled);
* per entry: tracks of other classes or still tentative, vehicles repeated or not finite, servers without
  an id, repeated or not finite, RSUs not finite: skipped and counted.

Ages are measured on the node's clock (sim time under replay). A node keeps only its decision logic.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros.cdr import CdrError, TrackTable, decode_tracks
from mobility_twin.ros.guard import count_summary, guarded
from mobility_twin.ros.qos import TWIN_STATE
from mobility_twin_core import VEHICLE_CLASSES, EntityKind, TrackState, TwinSnapshot
from mobility_twin_msgs.msg import EdgeServerStateArray, TrackedObjectArray, TwinStateArray


@dataclass(frozen=True)
class TwinReaderConfig:
    """Args:
    objects_topic: TrackedObjectArray with the vehicle twins.
    servers_topic: EdgeServerStateArray with the edge-server twins.
    state_topic: TwinStateArray whose RSU entities join the snapshot ('' = no RSUs).
    vehicle_classes: object classes that are vehicles.
    objects_timeout_s, servers_timeout_s: skip when the newest message is older than this (s).
    default_coverage_m: coverage of a server twin that reports none (m).
    default_capacity_ghz: CPU of a server twin that reports none (GHz).
    """

    objects_topic: str
    servers_topic: str
    state_topic: str = ""
    vehicle_classes: tuple[int, ...] = tuple(int(c) for c in VEHICLE_CLASSES)
    objects_timeout_s: float = 3.0
    servers_timeout_s: float = 5.0
    default_coverage_m: float = 200.0
    default_capacity_ghz: float = 2.0


class TwinReader:
    """Subscribes ``node`` to a twin's topics and builds :class:`TwinSnapshot` s of its newest state."""

    def __init__(self, node: Node, config: TwinReaderConfig) -> None:
        self.node = node
        self.config = config
        self.counts: Counter = Counter()
        self._objects_raw: bytes | None = None
        self._objects_at = -math.inf
        self._servers: EdgeServerStateArray | None = None
        self._servers_at = -math.inf
        self.rsus: dict[str, tuple[float, float]] = {}
        guard = guarded(node, self.counts, "twin input")
        node.create_subscription(TrackedObjectArray, config.objects_topic, guard(self._on_objects), TWIN_STATE, raw=True)
        node.create_subscription(EdgeServerStateArray, config.servers_topic, guard(self._on_servers), TWIN_STATE)
        if config.state_topic:
            node.create_subscription(TwinStateArray, config.state_topic, guard(self._on_state), TWIN_STATE)

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_objects(self, data: bytes) -> None:
        self._objects_raw, self._objects_at = data, self._now()

    def _on_servers(self, msg: EdgeServerStateArray) -> None:
        self._servers, self._servers_at = msg, self._now()

    def _on_state(self, msg: TwinStateArray) -> None:
        for e in msg.entities:
            if e.kind != EntityKind.RSU or not e.entity_id:
                continue
            p = e.pose.position
            if math.isfinite(p.x) and math.isfinite(p.y):
                self.rsus[e.entity_id] = (float(p.x), float(p.y))
            else:
                self.counts["rsu_not_finite"] += 1

    @property
    def servers_frame(self) -> str:
        return self._servers.header.frame_id if self._servers is not None else ""

    def header(self) -> Header:
        """A header for an output about this twin: stamped now (the node's clock), in the server twins' frame
        ('map' when they name none)."""
        return Header(stamp=self.node.get_clock().now().to_msg(), frame_id=self.servers_frame or "map")

    # ------------------------------------------------------------------------------------------ snapshot
    def skip_reason(self) -> str | None:
        """Why no snapshot can be built now (None: one can)."""
        cfg, now = self.config, self._now()
        if self._servers is None:
            return "no_server_twins_yet"
        if now - self._servers_at > cfg.servers_timeout_s:
            return "server_twins_stale"
        if self._objects_raw is None:
            return "no_vehicles_yet"
        if now - self._objects_at > cfg.objects_timeout_s:
            return "vehicles_stale"
        return None

    def snapshot(self) -> tuple[TwinSnapshot | None, str | None]:
        """(the snapshot of the newest twin state, None) or (None, why the slot is skipped); the reason and
        every entry skipped are added to :attr:`counts`."""
        reason = self.skip_reason()
        if reason is None:
            try:
                tracks = decode_tracks(self._objects_raw)
            except CdrError as err:
                self.counts["undecodable_tracks"] += 1
                self.node.get_logger().warning(f"undecodable TrackedObjectArray: {err}", throttle_duration_sec=10.0)
                self._objects_raw = None
                reason = "no_vehicles_yet"
        if reason is None and tracks.frame_id and self._servers.header.frame_id \
                and tracks.frame_id != self._servers.header.frame_id:
            reason = "frame_mismatch"
        if reason is None:
            snap = snapshot_from_messages(tracks, self._servers, self.rsus, self.config, self.counts)
            if snap is None:
                reason = "no_usable_servers"
        if reason is not None:
            self.counts[reason] += 1
            return None, reason
        return snap, None

    def take(self, what: str = "slot") -> TwinSnapshot | None:
        """:meth:`snapshot`, or None with the reason the ``what`` is skipped logged (throttled)."""
        snap, reason = self.snapshot()
        if snap is None:
            self.node.get_logger().warning(f"{what} skipped: {reason}", throttle_duration_sec=10.0)
        return snap

    def summary(self) -> str:
        return count_summary(self.counts)


def snapshot_from_messages(tracks: TrackTable, servers: EdgeServerStateArray, rsus: dict[str, tuple[float, float]],
                           config: TwinReaderConfig, counts: Counter) -> TwinSnapshot | None:
    """The :class:`TwinSnapshot` of a twin's decoded tracks, its server twins and its RSU positions; None
    without a usable server. Entries left out are added to ``counts`` by reason. Needs no running node."""
    cfg = config
    rec = tracks.records
    classes = np.isin(rec["object_class"], np.asarray(cfg.vehicle_classes))
    confirmed = rec["state"] != TrackState.TENTATIVE
    counts["not_a_confirmed_vehicle"] += int(np.count_nonzero(~(classes & confirmed)))
    values = np.stack([rec["px"], rec["py"], rec["vx"], rec["vy"], rec["age"]], axis=1)
    finite = np.isfinite(values).all(axis=1)
    counts["vehicle_not_finite"] += int(np.count_nonzero(classes & confirmed & ~finite))
    keep, ids, seen = [], [], set()
    for i in np.flatnonzero(classes & confirmed & finite).tolist():
        vid = tracks.vehicle_id[i] or f"track_{int(rec['track_id'][i])}"
        if vid in seen:
            counts["vehicle_duplicate"] += 1
            continue
        seen.add(vid)
        keep.append(i)
        ids.append(vid)
    keep = np.asarray(keep, dtype=np.int64)
    s_ids, s_xy, s_cov, s_cap, s_est, s_dev, s_load = [], [], [], [], [], [], []
    for s in servers.servers:
        p = s.position
        if not s.server_id or s.server_id in s_ids or not (math.isfinite(p.x) and math.isfinite(p.y)):
            counts["server_unnamed_duplicate_or_not_finite"] += 1
            continue
        s_ids.append(s.server_id)
        s_xy.append((p.x, p.y))
        cov = float(s.coverage_radius)
        s_cov.append(cov if math.isfinite(cov) and cov > 0 else cfg.default_coverage_m)
        cap = float(s.cpu_frequency_max)
        s_cap.append(cap / 1e9 if math.isfinite(cap) and cap > 0 else cfg.default_capacity_ghz)
        s_est.append(float(s.cpu_frequency_estimate))
        s_dev.append(float(s.cpu_frequency_deviation))
        s_load.append(float(s.load))
    if not s_ids:
        return None
    r_ids = sorted(rsus)
    return TwinSnapshot(
        t=from_time_ns(tracks.stamp_ns),
        vehicle_ids=np.asarray(ids, dtype=object), vehicle_xy=values[keep, :2].reshape(-1, 2),
        vehicle_vel=values[keep, 2:4].reshape(-1, 2),
        server_ids=np.asarray(s_ids, dtype=object), server_xy=np.asarray(s_xy, float).reshape(-1, 2),
        server_coverage_m=np.asarray(s_cov, float), server_capacity_ghz=np.asarray(s_cap, float),
        rsu_ids=np.asarray(r_ids, dtype=object), rsu_xy=np.asarray([rsus[r] for r in r_ids], float).reshape(-1, 2),
        vehicle_age_s=np.maximum(values[keep, 4], 0.0), vehicle_track_id=rec["track_id"][keep].astype(np.int64),
        server_estimate_hz=np.asarray(s_est, float), server_deviation_hz=np.asarray(s_dev, float),
        server_load=np.asarray(s_load, float),
    )



def from_time_ns(stamp_ns: int) -> float:
    """UNIX seconds of an integer nanosecond stamp, computed as ``from_time`` computes them for a message."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return sec + nanosec * 1e-9
