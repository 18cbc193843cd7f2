"""Detections of one sensor frame, as arrays: what perception produces and the tracker consumes."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

SOURCE_RSU = 0
SOURCE_CAV = 1
SOURCE_V2X = 2  # vehicles' own reports (cooperative awareness messages) relayed by an edge site


@dataclass(frozen=True)
class Detections:
    """The objects one source saw at one instant, in the map frame.

    Shapes: ``xy`` (M, 2) box centres, m; ``cov`` (M, 2, 2) position covariance, m^2; ``yaw`` (M,) rad;
    ``dims`` (M, 3) length, width, height, m; ``velocity`` (M, 2) m/s, NaN where not measured;
    ``confidence`` (M,) in [0, 1]; ``num_points`` (M,); ``object_class`` (M,) DetectedObject.CLASS_*;
    ``self_report`` (M,) the reporting vehicle's id for a vehicle's report of itself, else "".
    ``provenance``: (stage, wall time) pairs of the frame through the pipeline, for latency accounting.
    ``systematic_share``: the part of each position covariance that is the same error from frame to frame for
    the same vehicle (a LiDAR box completed from the faces its sensor sees, a GNSS receiver's slowly varying
    error), which more frames of the same source do not average away; set by the input channel (0: white).
    """

    source_id: str
    source_type: int
    stamp: float  # sensor time of the frame, s
    sensor_xy: tuple[float, float]  # sensor position in map, m
    sensor_range: float  # how far the source sees, m (its coverage disc)
    xy: np.ndarray
    cov: np.ndarray
    yaw: np.ndarray
    dims: np.ndarray
    velocity: np.ndarray
    confidence: np.ndarray
    num_points: np.ndarray
    object_class: np.ndarray
    self_report: np.ndarray
    provenance: tuple[tuple[str, float], ...] = field(default=())
    systematic_share: float = 0.0

    def __len__(self) -> int:
        return len(self.xy)

    @functools.cached_property
    def reports(self) -> np.ndarray:
        """(M,) bool: which detections are vehicles' reports of themselves (``self_report`` not empty)."""
        return self.self_report != ""

    @functools.cached_property
    def key(self) -> tuple[str, float]:
        """(source, stamp to the microsecond): a frame seen twice has the same key."""
        return (self.source_id, round(self.stamp, 6))

    @staticmethod
    def empty(source_id: str, source_type: int, stamp: float, sensor_xy=(0.0, 0.0), sensor_range=0.0,
              provenance: tuple[tuple[str, float], ...] = ()) -> Detections:
        return Detections(source_id, source_type, stamp, sensor_xy, sensor_range, np.zeros((0, 2)),
                          np.zeros((0, 2, 2)), np.zeros(0), np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0),
                          np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object),
                          provenance)

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        """One frame of several detection sets of the same source and stamp (the first's metadata)."""
        first = parts[0]
        return Detections(
            first.source_id, first.source_type, first.stamp, first.sensor_xy, first.sensor_range,
            np.concatenate([p.xy for p in parts]), np.concatenate([p.cov for p in parts]),
            np.concatenate([p.yaw for p in parts]), np.concatenate([p.dims for p in parts]),
            np.concatenate([p.velocity for p in parts]), np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.num_points for p in parts]), np.concatenate([p.object_class for p in parts]),
            np.concatenate([p.self_report for p in parts]), first.provenance, first.systematic_share,
        )

    def with_stage(self, stage: str, wall_time: float) -> Detections:
        from dataclasses import replace

        return replace(self, provenance=(*self.provenance, (stage, wall_time)))
