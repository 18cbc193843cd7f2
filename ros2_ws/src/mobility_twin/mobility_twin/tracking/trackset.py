"""Tracks as arrays, one row per track: what the tracker keeps, the twins exchange and the codecs encode."""

from __future__ import annotations

import base64
import functools
import zlib
from dataclasses import dataclass, field

import numpy as np

from mobility_twin.tracking.motion import predict
from mobility_twin_core import TrackState

TENTATIVE, CONFIRMED = int(TrackState.TENTATIVE), int(TrackState.CONFIRMED)


@functools.lru_cache(maxsize=1024)
def source_bit(source_id: str) -> np.uint64:
    """The bit of a source in :attr:`TrackSet.seen_by` (64 bits: two sources may share one, which only makes
    the tracker count one's misses as the other's, as it did before it kept the bits)."""
    return np.uint64(1) << np.uint64(zlib.crc32(source_id.encode()) % 64)


def object_array(items: list) -> np.ndarray:
    """An object array holding ``items`` as they are (numpy would unpack strings or sets otherwise)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


@dataclass
class TrackSet:
    """Tracks as arrays, one row per track. ``x``: (N, 4) x, y, vx, vy in ``map`` (m, m/s); ``P``: (N, 4, 4)
    its full covariance."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    P: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))
    dims: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    box_yaw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    object_class: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    misses: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    born: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last_update: np.ndarray = field(default_factory=lambda: np.zeros(0))
    existence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # frozenset of recent sources
    vehicle_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    # the tracker's bookkeeping (zeros when a track set is built from a message): the sources that have
    # detected the track, as bits (:func:`source_bit`), the misses counted by the others, and those counted by
    # the sources that have detected it (over its life: with ``hits``, how reliably it is detected)
    seen_by: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    blind_misses: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seen_misses: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    surprises: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # updates in a row that
    # the track did not predict (innovation beyond its covariance: a vehicle turning or braking)
    # the standard deviation (m) of the part of the position error that repeats from frame to frame (see
    # Detections.systematic_share): more frames of the same sources do not shrink it; the tracker adds it to the
    # covariance it publishes (MultiSourceTracker.confirmed_at)
    systematic: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # the serial number (in this tracker's life, from 1) of the frame that last updated or started the track;
    # two tracks one frame updated are two objects (MultiSourceTracker; 0: none of this tracker's frames)
    last_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # the sources (bits) that have missed the track since its last update: the misses of a run are spread over them
    missed_by: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    # since its last update, the LiDARs that covered its place saw it hidden (something standing nearer on its
    # bearing: perception.visibility): it coasts longer (hidden_coast_s)
    hidden: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    FIELDS = ("ids", "x", "P", "dims", "box_yaw", "object_class", "status", "hits", "misses", "born",
              "last_update", "existence", "sources", "vehicle_id", "seen_by", "blind_misses", "seen_misses",
              "surprises", "systematic", "last_frame", "missed_by", "hidden")

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.seen_by) != n:
            self.seen_by = np.zeros(n, dtype=np.uint64)
        if len(self.blind_misses) != n:
            self.blind_misses = np.zeros(n, dtype=np.int64)
        if len(self.seen_misses) != n:
            self.seen_misses = np.zeros(n, dtype=np.int64)
        if len(self.surprises) != n:
            self.surprises = np.zeros(n, dtype=np.int64)
        if len(self.systematic) != n:
            self.systematic = np.zeros(n)
        if len(self.last_frame) != n:
            self.last_frame = np.zeros(n, dtype=np.int64)
        if len(self.missed_by) != n:
            self.missed_by = np.zeros(n, dtype=np.uint64)
        if len(self.hidden) != n:
            self.hidden = np.zeros(n, dtype=bool)

    def __len__(self) -> int:
        return len(self.ids)

    def copy(self) -> TrackSet:
        d = self.__dict__
        return self._of({f: d[f].copy() for f in self.FIELDS})

    def select(self, mask: np.ndarray) -> TrackSet:
        mask = np.asarray(mask)
        rows = mask.nonzero()[0] if mask.dtype == bool else mask  # the rows found once, not once per field
        d = self.__dict__
        # (take: a third of fancy indexing's cost on the (N, 4) and (N, 4, 4) arrays of a few rows)
        return self._of({f: d[f][rows] if d[f].ndim == 1 else d[f].take(rows, axis=0) for f in self.FIELDS})

    def sharing(self) -> TrackSet:
        """A new set holding these very arrays: a view of a set whose arrays are only ever replaced (select,
        joined), never written into, or that has no rows to write into."""
        return self._of(dict(self.__dict__))  # (its fields are all it holds)

    @classmethod
    def _of(cls, arrays: dict) -> TrackSet:
        """A track set of arrays that already have one row per track each (as another set's, copied or
        selected): no defaults, no checks (the tracker copies its state before every frame)."""
        out = cls.__new__(cls)
        out.__dict__.update(arrays)
        return out

    def joined(self, other: TrackSet) -> TrackSet:
        """A new set of these tracks and then ``other``'s (neither set changed)."""
        d, o = self.__dict__, other.__dict__
        return self._of({f: np.concatenate([d[f], o[f]]) for f in self.FIELDS})

    def extend(self, other: TrackSet) -> None:
        """Append ``other``'s tracks to this set (its arrays replaced)."""
        self.__dict__.update(self.joined(other).__dict__)

    def predicted(self, dt: float, accel_noise: float) -> tuple[np.ndarray, np.ndarray]:
        """(x, P) predicted ``dt`` seconds ahead with the constant-velocity model."""
        return predict(self.x, self.P, dt, accel_noise)

    def heading(self) -> np.ndarray:
        """Heading from the velocity when moving, else the box orientation."""
        speed = np.hypot(self.x[:, 2], self.x[:, 3])
        return np.where(speed > 1.0, np.arctan2(self.x[:, 3], self.x[:, 2]), self.box_yaw)

    # ------------------------------------------------------------------------------------------ plain data
    def to_plain(self) -> dict:
        """The tracks as JSON-safe data (what a node persists so that a restart keeps its ids): each numeric
        field packed by :func:`pack_array` (a node saves every second; numbers as JSON text took milliseconds
        of its executor each time), the sources and vehicle ids as lists of strings."""
        out = {f: pack_array(getattr(self, f)) for f in self.FIELDS
               if f not in ("sources", "vehicle_id", "last_frame", "missed_by", "hidden")}
        out["sources"] = [sorted(s) for s in self.sources]
        out["vehicle_id"] = [str(v or "") for v in self.vehicle_id]
        return out

    @staticmethod
    def from_plain(data: dict) -> TrackSet:
        """The tracks of :meth:`to_plain` (numeric fields packed, or plain lists as saved before); ValueError,
        KeyError or TypeError when the data do not describe a track set."""
        n = len(data["sources"])

        def array(name: str, dtype, *shape: int, optional: bool = False) -> np.ndarray:
            if optional and name not in data:  # the tracker's bookkeeping, absent from older saves: zeros
                return np.zeros((n, *shape), dtype=dtype)
            return unpack_array(data[name], dtype).reshape(n, *shape)

        return TrackSet(
            ids=array("ids", np.int64), x=array("x", float, 4), P=array("P", float, 4, 4), dims=array("dims", float, 3),
            box_yaw=array("box_yaw", float), object_class=array("object_class", np.int64),
            status=array("status", np.int64), hits=array("hits", np.int64), misses=array("misses", np.int64),
            born=array("born", float), last_update=array("last_update", float), existence=array("existence", float),
            sources=object_array([frozenset(s) for s in data["sources"]]),
            vehicle_id=object_array([str(v) for v in data["vehicle_id"]]),
            seen_by=array("seen_by", np.uint64, optional=True),
            blind_misses=array("blind_misses", np.int64, optional=True),
            seen_misses=array("seen_misses", np.int64, optional=True),
            surprises=array("surprises", np.int64, optional=True), systematic=array("systematic", float, optional=True),
        )


def pack_array(values: np.ndarray) -> dict:
    """A numeric array as JSON-safe data: its dtype, shape and little-endian bytes in base64 (exact, and far
    cheaper to write than the numbers as JSON text: a dense global twin's state dumps in 0.36 ms, not 2.9)."""
    values = np.ascontiguousarray(values)
    little = values.astype(values.dtype.newbyteorder("<"), copy=False)
    return {"dtype": little.dtype.str, "shape": list(values.shape), "base64": base64.b64encode(little.tobytes()).decode()}


def unpack_array(value, dtype) -> np.ndarray:
    """An array of ``dtype`` from :func:`pack_array`'s data or from a plain (nested) list; ValueError when the
    data are not one."""
    if not isinstance(value, dict):
        return np.asarray(value, dtype=dtype)
    stored = np.dtype(value["dtype"])
    if stored.kind not in "biuf":
        raise ValueError(f"packed array of dtype {stored.str}: a number type expected")
    raw = base64.b64decode(value["base64"], validate=True)
    return np.frombuffer(raw, dtype=stored).reshape([int(k) for k in value["shape"]]).astype(dtype)
