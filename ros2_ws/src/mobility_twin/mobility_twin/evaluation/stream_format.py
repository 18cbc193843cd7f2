"""Recorded per-RSU detection streams and the hypotheses of a tracker run on them, as ``.npz`` files.

The format is read and written by two environments: the project's (numpy 2) and the peers' (numpy 1.26,
for norfair 2.3). So this module imports numpy and the standard library only, works with numpy >= 1.26,
and files are read with ``allow_pickle=False``: every array is numeric or fixed-width unicode, and the
metadata is a JSON string in a 0-d unicode array. The peers' runner imports it as a top-level module
(``sys.path`` set to this folder), so it must not import anything of ``mobility_twin``.

A stream (one RSU, frames in stamp order): per frame the detections of that RSU's LiDAR and the ground
truth at the frame's stamp, stored ragged (flat arrays plus ``F + 1`` offsets):

============  =========  ====================================================
key           shape      meaning
============  =========  ====================================================
stamps        (F,)       sensor time of each frame, s
det_offsets   (F+1,)     detections of frame k are rows det_offsets[k]:det_offsets[k+1]
xy            (N, 2)     box centre in `map`, m
cov           (N, 2, 2)  position covariance, m^2
yaw           (N,)       rad
dims          (N, 3)     length, width, height, m
velocity      (N, 2)     m/s, NaN where not measured
confidence    (N,)       [0, 1]
num_points    (N,)       LiDAR points in the cluster
object_class  (N,)       DetectedObject.CLASS_*
self_report   (N,)       the reporting vehicle's id for a self-report, else ""
gt_offsets    (F+1,)     ground truth of frame k is rows gt_offsets[k]:gt_offsets[k+1]
gt_ids        (G,)       vehicle ids
gt_xy         (G, 2)     vehicle centres at the frame's stamp, m
vis_clear     (F, V)     optional: each frame's visibility grid of clear cells, packed bits (uint8)
vis_blocked   (F, B)     optional: each frame's nearest standing return per bearing bin, m (float32)
meta          ()         JSON: format, version, rsu_id, sensor_xy, sensor_range_m, source_type, scenario,
                         vis_bins and vis_cell_m (with the visibility), ...
============  =========  ====================================================

The visibility (what the LiDAR saw of the space, ``mobility_twin.perception.visibility``) is kept in its wire
form, ``Frame.visibility`` = (bins, cell_m, clear bits, blocked), None when the stream has none (streams
recorded before it, or a detector that does not say). A stream keeps one grid shape for all its frames or
none: frames whose visibility could not be kept (some frames without one, grids of different shapes) are
counted in the metadata's ``vis_dropped_frames``.

Hypotheses (one tracker on one stream, frames aligned with the stream's): ``stamps``, ``offsets``,
``ids`` (H,), ``xy`` (H, 2), ``update_ms`` (F,) (wall time of the tracker's step for that frame) and
``meta`` (tracker, rsu_id, settings, versions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path

import numpy as np

STREAM_FORMAT = "mobility_twin.rsu_stream"
HYPOTHESES_FORMAT = "mobility_twin.hypotheses"
FORMAT_VERSION = 1

_DET_KEYS = ("xy", "cov", "yaw", "dims", "velocity", "confidence", "num_points", "object_class", "self_report")


class StreamFormatError(ValueError):
    """A stream or hypotheses file that is not of this format or version."""


Frame = make_dataclass(
    "Frame", [("stamp", float), *((key, np.ndarray) for key in _DET_KEYS), ("gt_ids", np.ndarray),
              ("gt_xy", np.ndarray), ("visibility", tuple, field(default=None))], frozen=True,
    namespace={"__doc__": "One frame of a stream: ``stamp``, the detection arrays (``_DET_KEYS``, the attributes of "
                          "perception's ``Detections``) and the ground truth at ``stamp``."})


def frame_of(stamp: float, detections, gt_ids: np.ndarray, gt_xy: np.ndarray) -> Frame:
    """The frame of ``detections`` (any object with the arrays of ``_DET_KEYS`` as attributes, and optionally a
    ``visibility`` with a ``packed()`` wire form) at ``stamp``."""
    seen = getattr(detections, "visibility", None)
    return Frame(float(stamp), *(getattr(detections, key) for key in _DET_KEYS), gt_ids, gt_xy,
                 None if seen is None else seen.packed())


class _PerFrame:
    """Arrays stored per frame: ``stamps`` (F,), and flat arrays whose rows of frame k lie between two of ``F + 1``
    offsets."""

    def __len__(self) -> int:
        return len(self.stamps)

    @staticmethod
    def _rows(offsets: np.ndarray, k: int) -> slice:
        return slice(int(offsets[k]), int(offsets[k + 1]))


@dataclass(frozen=True)
class RsuStream(_PerFrame):
    """Every frame of one RSU (see the module docstring for the arrays)."""

    rsu_id: str
    sensor_xy: tuple[float, float]
    sensor_range_m: float
    stamps: np.ndarray
    det_offsets: np.ndarray
    detections: dict[str, np.ndarray]
    gt_offsets: np.ndarray
    gt_ids: np.ndarray
    gt_xy: np.ndarray
    meta: dict = field(default_factory=dict)
    vis_clear: np.ndarray | None = None  # (F, V) packed bits, or None: no visibility recorded
    vis_blocked: np.ndarray | None = None  # (F, B)

    def frame(self, k: int) -> Frame:
        det, gt = self._rows(self.det_offsets, k), self._rows(self.gt_offsets, k)
        seen = None
        if self.vis_clear is not None:
            seen = (int(self.meta["vis_bins"]), float(self.meta["vis_cell_m"]), self.vis_clear[k], self.vis_blocked[k])
        return Frame(float(self.stamps[k]), *(self.detections[key][det] for key in _DET_KEYS), self.gt_ids[gt],
                     self.gt_xy[gt], seen)

    def frames(self):
        for k in range(len(self)):
            yield self.frame(k)

    @property
    def frame_period_s(self) -> float:
        """The median interval between frames (the sensor's period), s."""
        return float(np.median(np.diff(self.stamps))) if len(self.stamps) > 1 else 0.1

    @staticmethod
    def from_frames(rsu_id: str, sensor_xy, sensor_range_m: float, frames: list[Frame], meta: dict | None = None
                    ) -> RsuStream:
        """A stream from frames given one by one (the recorder's and the tests' way)."""
        det = {key: _concat([getattr(f, key) for f in frames], _DET_SHAPES[key])
               .astype(_DET_DTYPES.get(key, np.float64)) for key in _DET_KEYS}
        meta, clear, blocked = dict(meta or {}), None, None
        seen = [f.visibility for f in frames]
        carried = sum(v is not None for v in seen)
        if carried and carried == len(frames) and len({(v[0], v[1], len(v[2])) for v in seen}) == 1:
            meta["vis_bins"], meta["vis_cell_m"] = int(seen[0][0]), float(seen[0][1])
            clear = np.stack([np.asarray(v[2], dtype=np.uint8) for v in seen])
            blocked = np.stack([np.asarray(v[3], dtype=np.float32) for v in seen])
        elif carried:  # one grid per stream or none: what was left out is said, not lost silently
            meta["vis_dropped_frames"] = carried
        return RsuStream(
            rsu_id, (float(sensor_xy[0]), float(sensor_xy[1])), float(sensor_range_m),
            np.array([f.stamp for f in frames], dtype=np.float64),
            _offsets([len(f.xy) for f in frames]), det,
            _offsets([len(f.gt_ids) for f in frames]),
            _concat([f.gt_ids for f in frames], (0,)).astype(np.int64),
            _concat([f.gt_xy for f in frames], (0, 2)).astype(np.float64),
            meta, clear, blocked,
        )


@dataclass(frozen=True)
class Hypotheses(_PerFrame):
    """A tracker's confirmed tracks after each frame of one stream, and the time it took per frame."""

    tracker: str
    rsu_id: str
    stamps: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    xy: np.ndarray
    update_ms: np.ndarray
    meta: dict = field(default_factory=dict)

    def frame(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Track ids (H,) and positions (H, 2) after frame ``k``."""
        rows = self._rows(self.offsets, k)
        return self.ids[rows], self.xy[rows]

    @staticmethod
    def from_frames(tracker: str, rsu_id: str, stamps, frames: list[tuple[np.ndarray, np.ndarray]], update_ms,
                    meta: dict | None = None) -> Hypotheses:
        return Hypotheses(
            tracker, rsu_id, np.asarray(stamps, dtype=np.float64), _offsets([len(ids) for ids, _ in frames]),
            _concat([ids for ids, _ in frames], (0,)).astype(np.int64),
            _concat([xy for _, xy in frames], (0, 2)).astype(np.float64),
            np.asarray(update_ms, dtype=np.float64), dict(meta or {}),
        )


_DET_SHAPES = {"xy": (0, 2), "cov": (0, 2, 2), "yaw": (0,), "dims": (0, 3), "velocity": (0, 2), "confidence": (0,),
               "num_points": (0,), "object_class": (0,), "self_report": (0,)}
_DET_DTYPES = {"num_points": np.int64, "object_class": np.int64, "self_report": str}


def _offsets(counts) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]).astype(np.int64)


def _concat(parts, empty_shape) -> np.ndarray:
    parts = [np.asarray(p) for p in parts if len(p)]
    if not parts:
        return np.zeros(empty_shape)
    return np.concatenate(parts)


def _meta_array(meta: dict) -> np.ndarray:
    return np.array(json.dumps(meta, sort_keys=True))


def _read(path: Path, kind: str) -> tuple[dict, dict]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise StreamFormatError(f"Could not read {kind} file {path}: {err}.") from None
    if "meta" not in arrays:
        raise StreamFormatError(f"{path} has no metadata: not a {kind} file.")
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != kind or meta.get("version") != FORMAT_VERSION:
        raise StreamFormatError(f"{path} is {meta.get('format')!r} version {meta.get('version')!r}, "
                                f"expected {kind!r} version {FORMAT_VERSION}.")
    return arrays, meta


def save_stream(path: Path | str, stream: RsuStream) -> Path:
    """Write ``stream`` to ``path`` (.npz, compressed); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**stream.meta, "format": STREAM_FORMAT, "version": FORMAT_VERSION, "rsu_id": stream.rsu_id,
            "sensor_xy": list(stream.sensor_xy), "sensor_range_m": stream.sensor_range_m}
    det = {k: np.asarray(v) for k, v in stream.detections.items()}
    det["self_report"] = det["self_report"].astype(str)
    if stream.vis_clear is not None:
        det["vis_clear"], det["vis_blocked"] = stream.vis_clear, stream.vis_blocked
    with open(path, "wb") as fh:
        np.savez_compressed(fh, stamps=stream.stamps, det_offsets=stream.det_offsets, gt_offsets=stream.gt_offsets,
                            gt_ids=stream.gt_ids, gt_xy=stream.gt_xy, meta=_meta_array(meta), **det)
    return path


def load_stream(path: Path | str) -> RsuStream:
    arrays, meta = _read(path, STREAM_FORMAT)
    det = {k: arrays[k] for k in _DET_KEYS}
    reports = det["self_report"].tolist()  # kept as objects, as the trackers take them (a frame's rows: a view)
    det["self_report"] = np.empty(len(reports), dtype=object)
    det["self_report"][:] = reports
    return RsuStream(meta["rsu_id"], tuple(meta["sensor_xy"]), float(meta["sensor_range_m"]), arrays["stamps"],
                     arrays["det_offsets"], det, arrays["gt_offsets"],
                     arrays["gt_ids"], arrays["gt_xy"], meta, arrays.get("vis_clear"), arrays.get("vis_blocked"))


def save_hypotheses(path: Path | str, hyps: Hypotheses) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**hyps.meta, "format": HYPOTHESES_FORMAT, "version": FORMAT_VERSION, "tracker": hyps.tracker,
            "rsu_id": hyps.rsu_id}
    with open(path, "wb") as fh:
        np.savez_compressed(fh, stamps=hyps.stamps, offsets=hyps.offsets, ids=hyps.ids, xy=hyps.xy,
                            update_ms=hyps.update_ms, meta=_meta_array(meta))
    return path


def load_hypotheses(path: Path | str) -> Hypotheses:
    arrays, meta = _read(path, HYPOTHESES_FORMAT)
    return Hypotheses(meta["tracker"], meta["rsu_id"], arrays["stamps"], arrays["offsets"], arrays["ids"],
                      arrays["xy"], arrays["update_ms"], meta)


def stream_paths(folder: Path | str) -> list[Path]:
    """The stream files of a folder, in RSU order."""
    return sorted(Path(folder).glob("*.npz"))
