"""Detections of one sensor frame, as arrays: what perception produces and the tracker consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mobility_twin.perception.visibility import Visibility

SOURCE_RSU = 0
SOURCE_CAV = 1
SOURCE_V2X = 2  # vehicles' own reports (cooperative awareness messages) relayed by an edge site


class _once:
    """A property computed on first access and kept in the instance (``functools.cached_property`` without its
    lock, which Python 3.11 takes on every first access: a frame's few derived fields are cheap to compute and
    the same whichever thread computes them first)."""

    def __init__(self, func) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)  # found in the instance from now on
        return value


@dataclass(frozen=True, init=False)
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
    ``sources``: (M,) each detection's source id, in a frame that gathers the frames of several sources of one
    instant (:meth:`of_instant`: the V2X relays of a site's edge servers); None: every detection is
    ``source_id``'s.
    ``visibility``: what a LiDAR frame saw of the space around its sensor (:mod:`.visibility`: where a vehicle
    would have been hit, where the view is hidden); None: not known (reports, a detector that does not say).
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
    sources: np.ndarray | None = None
    visibility: Visibility | None = None

    def __init__(self, source_id: str, source_type: int, stamp: float, sensor_xy: tuple[float, float],
                 sensor_range: float, xy: np.ndarray, cov: np.ndarray, yaw: np.ndarray, dims: np.ndarray,
                 velocity: np.ndarray, confidence: np.ndarray, num_points: np.ndarray, object_class: np.ndarray,
                 self_report: np.ndarray, provenance: tuple[tuple[str, float], ...] = (),
                 systematic_share: float = 0.0, sources: np.ndarray | None = None,
                 visibility: Visibility | None = None) -> None:
        # the fields set at once (a frozen dataclass's own __init__ sets them one by one through
        # object.__setattr__: 1.7 us of every sensor frame, against 0.7)
        object.__setattr__(self, "__dict__", {
            "source_id": source_id, "source_type": source_type, "stamp": stamp, "sensor_xy": sensor_xy,
            "sensor_range": sensor_range, "xy": xy, "cov": cov, "yaw": yaw, "dims": dims, "velocity": velocity,
            "confidence": confidence, "num_points": num_points, "object_class": object_class,
            "self_report": self_report, "provenance": provenance, "systematic_share": systematic_share,
            "sources": sources, "visibility": visibility})

    def __len__(self) -> int:
        return len(self.xy)

    @_once
    def source_ids(self) -> tuple[str, ...]:
        """The sources of the frame (``source_id`` first)."""
        if self.sources is None:
            return (self.source_id,)
        return tuple(dict.fromkeys([self.source_id, *self.sources.tolist()]))

    def source_of(self, i: int) -> str:
        """The source of detection ``i``."""
        return self.source_id if self.sources is None else self.sources[i]

    @_once
    def source_bits(self) -> np.ndarray:
        """(M,) uint64: each detection's source bit (``tracking.trackset.source_bit``)."""
        from mobility_twin.tracking.trackset import source_bit

        if self.sources is None:
            return np.full(len(self), source_bit(self.source_id), dtype=np.uint64)
        bits = {s: source_bit(s) for s in self.source_ids}
        return np.array([bits[s] for s in self.sources.tolist()], dtype=np.uint64)

    @_once
    def keys(self) -> tuple[tuple[str, float], ...]:
        """The key of each source's frame gathered in this one (:attr:`key` for a frame of one source)."""
        stamp = round(self.stamp, 6)
        return tuple((s, stamp) for s in self.source_ids)

    @_once
    def reports(self) -> np.ndarray:
        """(M,) bool: which detections are vehicles' reports of themselves (``self_report`` not empty)."""
        return self.self_report.astype(bool)  # a string's truth: not empty (4 times faster than != "")

    @_once
    def velocity_measured(self) -> np.ndarray:
        """(M,) bool: which detections carry a measured velocity (not NaN)."""
        return np.isfinite(self.velocity[:, 0])

    @_once
    def velocities(self) -> int:
        """How many detections carry a measured velocity."""
        return int(np.count_nonzero(self.velocity_measured))

    @_once
    def report_count(self) -> int:
        """How many detections are vehicles' reports of themselves."""
        return int(np.count_nonzero(self.reports))

    @_once
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
            visibility=first.visibility,
        )

    @staticmethod
    def of_instant(parts: list[Detections]) -> Detections:
        """One frame of the frames of several sources that share a stamp and see no area (``sensor_range`` 0:
        vehicles' own reports, relayed); each detection keeps its source in :attr:`sources`. The metadata (sensor
        position, provenance) are the first frame's."""
        first = parts[0]
        if len(parts) == 1:
            return first
        for p in parts[1:]:
            if p.stamp != first.stamp or p.source_type != first.source_type \
                    or p.systematic_share != first.systematic_share:
                raise ValueError(f"frames of {first.source_id} and {p.source_id} are not of one instant and kind")
        if any(p.sensor_range > 0 for p in parts):
            raise ValueError("only frames of sources without coverage (sensor_range 0) can be fused as one: a "
                             "sensor's coverage tells which tracks it missed")
        merged = Detections.concat(parts)
        sources = np.empty(len(merged), dtype=object)
        start = 0
        for p in parts:
            sources[start:start + len(p)] = p.source_id if p.sources is None else p.sources
            start += len(p)
        return replace(merged, sources=sources)

    def select(self, keep: np.ndarray) -> Detections:
        """The detections ``keep`` (a mask or indices) of the frame."""
        return replace(self, xy=self.xy[keep], cov=self.cov[keep], yaw=self.yaw[keep], dims=self.dims[keep],
                       velocity=self.velocity[keep], confidence=self.confidence[keep],
                       num_points=self.num_points[keep], object_class=self.object_class[keep],
                       self_report=self.self_report[keep], sources=None if self.sources is None else self.sources[keep])

    def with_stage(self, stage: str, wall_time: float) -> Detections:
        return replace(self, provenance=(*self.provenance, (stage, wall_time)))
