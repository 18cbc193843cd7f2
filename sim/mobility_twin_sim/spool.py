"""A time-bucketed on-disk spool of projected fixes, for fleets too large to hold at once.

:meth:`TrajectorySpool.build` streams taxis from the reader (one taxi in memory at a time), projects
them, and appends their fixes to one binary file per time bucket (default one hour), flushing buffers
as they fill: memory stays bounded whatever the size of the data (a week of the whole T-Drive fleet is
about 15 million fixes). :meth:`TrajectorySpool.slots` then replays any period window by window, each
window a :class:`~mobility_twin_sim.fleet.Fleet` of the buckets around it only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobility_twin_sim.fleet import Fleet, FleetState
from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.tdrive import TaxiTrack

RECORD = np.dtype([("taxi", "<i8"), ("t", "<f8"), ("x", "<f8"), ("y", "<f8")])


@dataclass
class TrajectorySpool:
    folder: Path
    bucket_s: float
    buckets: dict[int, int]  # bucket index -> number of fixes
    taxis: int

    @classmethod
    def build(cls, tracks: Iterable[TaxiTrack], projection: LocalENU, folder: Path | str, *,
              bucket_s: float = 3600.0, flush_fixes: int = 100_000) -> TrajectorySpool:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("bucket_*.bin"):
            old.unlink()
        pending: dict[int, list[np.ndarray]] = {}
        pending_fixes = 0
        counts: dict[int, int] = {}
        taxis = 0

        def flush() -> None:
            for b, parts in pending.items():
                with (folder / f"bucket_{b}.bin").open("ab") as f:
                    for part in parts:
                        f.write(part.tobytes())
            pending.clear()

        for track in tracks:
            taxis += 1
            x, y = projection.forward(track.lon, track.lat)
            rec = np.empty(len(track), dtype=RECORD)
            rec["taxi"], rec["t"], rec["x"], rec["y"] = track.taxi_id, track.t, x, y
            bucket = np.floor(track.t / bucket_s).astype(np.int64)
            for b in np.unique(bucket):
                part = rec[bucket == b]
                pending.setdefault(int(b), []).append(part)
                counts[int(b)] = counts.get(int(b), 0) + len(part)
                pending_fixes += len(part)
            if pending_fixes >= flush_fixes:
                flush()
                pending_fixes = 0
        flush()
        return cls(folder, bucket_s, dict(sorted(counts.items())), taxis)

    @property
    def fixes(self) -> int:
        return sum(self.buckets.values())

    @property
    def time_range(self) -> tuple[float, float]:
        if not self.buckets:
            return (0.0, 0.0)
        return (min(self.buckets) * self.bucket_s, (max(self.buckets) + 1) * self.bucket_s)

    def _read(self, b: int) -> np.ndarray:
        path = self.folder / f"bucket_{b}.bin"
        return np.fromfile(path, dtype=RECORD) if path.exists() else np.zeros(0, dtype=RECORD)

    def window(self, start: float, end: float, *, max_gap_s: float) -> Fleet:
        """A Fleet of every fix in [start - max_gap_s, end + max_gap_s] (enough to interpolate [start, end])."""
        lo = math.floor((start - max_gap_s) / self.bucket_s)
        hi = math.floor((end + max_gap_s) / self.bucket_s)
        rec = np.concatenate([self._read(b) for b in range(lo, hi + 1)])
        rec = rec[(rec["t"] >= start - max_gap_s) & (rec["t"] <= end + max_gap_s)]
        order = np.lexsort((rec["t"], rec["taxi"]))
        rec = rec[order]
        ids, first = np.unique(rec["taxi"], return_index=True)
        offsets = np.append(first, len(rec))
        return Fleet(ids, offsets, rec["t"], rec["x"], rec["y"], max_gap_s=max_gap_s)

    def slots(self, slot_s: float, start: float, end: float, *, max_gap_s: float) -> Iterator[FleetState]:
        """Fleet states every ``slot_s`` from ``start`` to ``end``, one bucket-sized window in memory at a time."""
        if max_gap_s > self.bucket_s:
            raise ValueError(f"max_gap_s {max_gap_s} exceeds the bucket length {self.bucket_s}")
        n = math.floor((end - start) / slot_s + 1e-9) + 1
        i = 0
        while i < n:
            w_start = start + i * slot_s
            w_end = min(end, w_start + self.bucket_s)
            fleet = self.window(w_start, w_end, max_gap_s=max_gap_s)
            while i < n and start + i * slot_s <= w_end + 1e-9:
                yield fleet.state_at(start + i * slot_s)
                i += 1
