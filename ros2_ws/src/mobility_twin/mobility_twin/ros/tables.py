"""Core objects <-> the codec tables of the high-rate messages (Detections, TrackSet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mobility_twin.perception.detections import Detections
from mobility_twin.perception.visibility import Visibility
from mobility_twin.ros.cdr import DetectionTable, Provenance, TrackTable, seconds_to_ns

if TYPE_CHECKING:
    from mobility_twin.tracking import TrackSet

# mobility_twin.tracking (and the scipy it needs) is imported where a function needs it, not with this module: a
# perception node only encodes detections and should not wait for the tracker's imports as it starts

_COV_XY = [0, 1, 6, 7]  # (x, y) block of a row-major 6x6 covariance


def detections_to_table(d: Detections, sensor_z: float = 0.0, sensor_yaw: float = 0.0,
                        frame_id: str = "map") -> DetectionTable:
    n = len(d)
    rec = DetectionTable.allocate(n)
    rec["px"], rec["py"] = d.xy[:, 0], d.xy[:, 1]
    rec["pz"] = d.dims[:, 2] / 2
    rec["qz"], rec["qw"] = np.sin(d.yaw / 2), np.cos(d.yaw / 2)
    rec["pose_cov"][:, _COV_XY] = d.cov.reshape(n, 4)
    rec["pose_cov"][:, 35] = 0.05
    has_twist = np.isfinite(d.velocity[:, 0])
    rec["vx"] = np.where(has_twist, d.velocity[:, 0], 0.0)
    rec["vy"] = np.where(has_twist, d.velocity[:, 1], 0.0)
    rec["twist_cov"][has_twist, 0] = rec["twist_cov"][has_twist, 7] = 0.25
    rec["has_twist"] = has_twist
    rec["length"], rec["width"], rec["height"] = d.dims[:, 0], d.dims[:, 1], d.dims[:, 2]
    rec["confidence"] = d.confidence
    rec["range"] = np.hypot(d.xy[:, 0] - d.sensor_xy[0], d.xy[:, 1] - d.sensor_xy[1])
    rec["num_points"] = d.num_points
    rec["object_class"] = d.object_class
    return DetectionTable(
        seconds_to_ns(d.stamp), frame_id, d.source_id, d.source_type, (d.sensor_xy[0], d.sensor_xy[1], sensor_z,
                                                                       sensor_yaw),
        d.sensor_range, rec, [str(s) for s in d.self_report],
        Provenance(d.source_id, seconds_to_ns(d.stamp), tuple(d.provenance)),
        None if d.visibility is None else d.visibility.packed(),
    )


def table_to_detections(t: DetectionTable) -> Detections:
    from mobility_twin.tracking.tracker import object_array

    rec = t.records
    n = len(rec)
    has_twist = rec["has_twist"].astype(bool)
    velocity = np.full((n, 2), np.nan)
    velocity[has_twist, 0], velocity[has_twist, 1] = rec["vx"][has_twist], rec["vy"][has_twist]
    return Detections(
        t.source_id, t.source_type, t.stamp, (t.sensor_pose[0], t.sensor_pose[1]), t.sensor_range,
        np.stack([rec["px"], rec["py"]], axis=1), rec["pose_cov"][:, _COV_XY].reshape(n, 2, 2).copy(),
        2.0 * np.arctan2(rec["qz"], rec["qw"]), np.stack([rec["length"], rec["width"], rec["height"]], axis=1),
        velocity, rec["confidence"].astype(float), rec["num_points"].astype(np.int64),
        rec["object_class"].astype(np.int64), object_array(list(t.self_report_id)), tuple(t.provenance.stages),
        visibility=None if t.visibility is None else Visibility.unpacked(*t.visibility),
    )


def tracks_to_table(tracks: TrackSet, stamp: float, twin_id: str, *, site_id: str | list[str] = "",
                    provenance: list[Provenance] = (), stale_after_s: float = 0.3, frame_id: str = "map") -> TrackTable:
    n = len(tracks)
    rec = TrackTable.allocate(n)
    rec["track_id"] = tracks.ids
    rec["object_class"] = tracks.object_class
    coasting = stamp - tracks.last_update > stale_after_s
    rec["state"] = np.where(coasting, 2, 1)  # TrackedObject.STATE_COASTING / STATE_CONFIRMED
    rec["existence"] = np.clip(tracks.existence, 0.0, 1.0)
    rec["px"], rec["py"] = tracks.x[:, 0], tracks.x[:, 1]
    rec["pz"] = tracks.dims[:, 2] / 2
    heading = tracks.heading()
    rec["qz"], rec["qw"] = np.sin(heading / 2), np.cos(heading / 2)
    rec["pose_cov"][:, _COV_XY] = tracks.P[:, :2, :2].reshape(n, 4)
    rec["pose_cov"][:, 35] = 0.05
    rec["vx"], rec["vy"] = tracks.x[:, 2], tracks.x[:, 3]
    rec["twist_cov"][:, _COV_XY] = tracks.P[:, 2:, 2:].reshape(n, 4)
    rec["state_cov"] = tracks.P.reshape(n, 16)
    rec["length"], rec["width"], rec["height"] = tracks.dims[:, 0], tracks.dims[:, 1], tracks.dims[:, 2]
    last_ns = np.round(tracks.last_update * 1e9).astype(np.int64)
    rec["lm_sec"], rec["lm_nanosec"] = last_ns // 1_000_000_000, last_ns % 1_000_000_000
    rec["age"] = stamp - tracks.last_update
    sites = site_id if isinstance(site_id, list) else [site_id] * n
    return TrackTable(
        seconds_to_ns(stamp), frame_id, twin_id, rec, [sorted(s) for s in tracks.sources], sites,
        [v or "" for v in tracks.vehicle_id], list(provenance),
    )


def table_to_tracks(t: TrackTable) -> TrackSet:
    from mobility_twin.tracking import TrackSet
    from mobility_twin.tracking.tracker import object_array

    rec = t.records
    n = len(rec)
    x = np.stack([rec["px"], rec["py"], rec["vx"], rec["vy"]], axis=1)
    P = rec["state_cov"].reshape(n, 4, 4).copy()
    blocks = ~P.any(axis=(1, 2))  # a publisher without the full covariance: the two diagonal blocks
    P[blocks, :2, :2] = rec["pose_cov"][blocks][:, _COV_XY].reshape(-1, 2, 2)
    P[blocks, 2:, 2:] = rec["twist_cov"][blocks][:, _COV_XY].reshape(-1, 2, 2)
    return TrackSet(
        ids=rec["track_id"].astype(np.int64), x=x, P=P,
        dims=np.stack([rec["length"], rec["width"], rec["height"]], axis=1),
        box_yaw=2.0 * np.arctan2(rec["qz"], rec["qw"]), object_class=rec["object_class"].astype(np.int64),
        status=np.ones(n, dtype=np.int64), hits=np.zeros(n, dtype=np.int64), misses=np.zeros(n, dtype=np.int64),
        born=np.zeros(n), last_update=rec["lm_sec"] + rec["lm_nanosec"] * 1e-9, existence=rec["existence"].astype(float),
        sources=object_array([frozenset(s) for s in t.sources]), vehicle_id=object_array(list(t.vehicle_id)),
    )
