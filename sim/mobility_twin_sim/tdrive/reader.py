"""Streaming reader of T-Drive taxi files with every line accounted for.

T-Drive (Microsoft Research): one text file per taxi, lines ``taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude``
in Beijing local time (UTC+8). The reader accepts a file, a folder of such files (recursively), or a
``.zip`` / ``.tar.gz`` / ``.tgz`` archive of them, and yields one :class:`TaxiTrack` per file, holding
only that file's points: memory stays bounded by the largest single taxi, whatever the fleet size.

Every line read is either kept or skipped with a :class:`SkipReason`; the :class:`LoadReport` counts
them (``kept + skipped == lines_read``) and keeps example ``file:line`` locations per reason.
"""

from __future__ import annotations

import io
import math
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path

import numpy as np

BEIJING = timezone(timedelta(hours=8))
EXAMPLES_PER_REASON = 5


class TDriveError(Exception):
    """A path that cannot be read as T-Drive data."""


class SkipReason(StrEnum):
    BLANK = "blank_line"
    HEADER = "header_line"
    FIELD_COUNT = "wrong_field_count"
    BAD_TIME = "unparseable_time"
    BAD_COORDINATE = "unparseable_coordinate"
    ZERO_COORDINATE = "zero_coordinate"
    OUTSIDE_AREA = "outside_area"
    OUTSIDE_WINDOW = "outside_time_window"
    ID_MISMATCH = "taxi_id_not_matching_file"
    DUPLICATE = "exact_duplicate"
    REPEATED_TIME = "repeated_time_other_position"
    OUT_OF_ORDER = "out_of_order_time"
    SPEED = "implied_speed_above_limit"


@dataclass(frozen=True)
class ReaderConfig:
    """What a kept line must satisfy. Defaults: the Beijing box of the T-Drive release, any time."""

    lon_min: float = 115.7
    lon_max: float = 117.4
    lat_min: float = 39.4
    lat_max: float = 41.1
    start: datetime | None = None  # inclusive, Beijing time; None: no limit
    end: datetime | None = None  # exclusive
    max_speed_mps: float = 50.0  # implied speed from the previous kept point (180 km/h)

    def __post_init__(self) -> None:
        if not (self.lon_min < self.lon_max and self.lat_min < self.lat_max):
            raise ValueError(f"empty area: lon {self.lon_min}..{self.lon_max}, lat {self.lat_min}..{self.lat_max}")
        if self.max_speed_mps <= 0:
            raise ValueError(f"max_speed_mps must be positive, got {self.max_speed_mps}")

    @property
    def start_s(self) -> float:
        return -math.inf if self.start is None else _aware(self.start).timestamp()

    @property
    def end_s(self) -> float:
        return math.inf if self.end is None else _aware(self.end).timestamp()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


@dataclass
class LoadReport:
    """Per-reason accounting of every line read."""

    lines_read: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    files: int = 0
    taxis_with_points: int = 0

    def skip(self, reason: SkipReason, where: str) -> None:
        self.skipped[reason.value] += 1
        ex = self.examples.setdefault(reason.value, [])
        if len(ex) < EXAMPLES_PER_REASON:
            ex.append(where)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: LoadReport) -> None:
        self.lines_read += other.lines_read
        self.kept += other.kept
        self.skipped.update(other.skipped)
        for reason, ex in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(ex[: EXAMPLES_PER_REASON - len(mine)])
        self.files += other.files
        self.taxis_with_points += other.taxis_with_points

    def check(self) -> None:
        """Raise when the books do not balance (a line lost without a reason)."""
        if self.kept + self.skipped_total != self.lines_read:
            raise AssertionError(f"kept {self.kept} + skipped {self.skipped_total} != lines read {self.lines_read}")

    def to_dict(self) -> dict:
        return {
            "lines_read": self.lines_read,
            "kept": self.kept,
            "skipped_total": self.skipped_total,
            "skipped": dict(sorted(self.skipped.items())),
            "examples": {k: self.examples[k] for k in sorted(self.examples)},
            "files": self.files,
            "taxis_with_points": self.taxis_with_points,
        }


@dataclass(frozen=True)
class TaxiTrack:
    """The kept points of one taxi, in time order. ``t``: UNIX seconds; ``lon``, ``lat``: WGS84 degrees."""

    taxi_id: int
    t: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.t)


# ------------------------------------------------------------------------------------------ sources
def _is_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".zip", ".tar.gz", ".tgz", ".tar"))


def iter_sources(path: Path | str) -> Iterator[tuple[str, io.TextIOBase]]:
    """(display name, text stream) of every taxi file under ``path``, in a stable order."""
    path = Path(path)
    if not path.exists():
        raise TDriveError(f"T-Drive path {path} does not exist")
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt"),
                       key=lambda p: (_numeric_key(p.stem), str(p)))
        archives = sorted(p for p in path.rglob("*") if p.is_file() and _is_archive(p))
        if not files and not archives:
            raise TDriveError(f"no T-Drive files (*.txt, .zip, .tar.gz) under {path}")
        for p in files:
            with p.open("r", encoding="utf-8", errors="replace", newline=None) as stream:
                yield str(p), stream
        for archive in archives:
            yield from iter_sources(archive)
        return
    name = path.name.lower()
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                members = sorted((i for i in zf.infolist() if not i.is_dir() and i.filename.lower().endswith(".txt")),
                                 key=lambda i: (_numeric_key(Path(i.filename).stem), i.filename))
                for info in members:
                    with zf.open(info) as raw:
                        yield f"{path}!{info.filename}", io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
        except zipfile.BadZipFile as err:
            raise TDriveError(f"cannot read zip archive {path}: {err}") from None
        return
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(path, "r|*") as tf:  # streaming: members in archive order
                for member in tf:
                    if not member.isfile() or not member.name.lower().endswith(".txt"):
                        continue
                    raw = tf.extractfile(member)
                    if raw is not None:  # one taxi file at a time in memory (a stream member is not seekable)
                        data = io.BytesIO(raw.read())
                        yield f"{path}!{member.name}", io.TextIOWrapper(data, encoding="utf-8", errors="replace")
        except tarfile.TarError as err:
            raise TDriveError(f"cannot read tar archive {path}: {err}") from None
        return
    yield str(path), path.open("r", encoding="utf-8", errors="replace")


def _numeric_key(stem: str) -> int:
    return int(stem) if stem.isdigit() else -1


# ------------------------------------------------------------------------------------------ parsing
_DAY_START: dict[str, float] = {}


def _parse_time(text: str) -> float | None:
    """UNIX seconds of 'YYYY-MM-DD HH:MM:SS' in Beijing time; None when malformed. Dates are cached:
    a week of the fleet is 15 million lines but only 7 dates."""
    text = text.strip()
    if len(text) != 19 or text[10] != " " or text[13] != ":" or text[16] != ":":
        return None
    day = _DAY_START.get(text[:10])
    if day is None:
        try:
            day = datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=BEIJING).timestamp()
        except ValueError:
            return None
        _DAY_START[text[:10]] = day
    hh, mm, ss = text[11:13], text[14:16], text[17:19]
    if not (hh.isdigit() and mm.isdigit() and ss.isdigit()):
        return None
    h, m, sec = int(hh), int(mm), int(ss)
    if h > 23 or m > 59 or sec > 59:
        return None
    return day + h * 3600 + m * 60 + sec


def read_stream(name: str, stream: io.TextIOBase, config: ReaderConfig,
                report: LoadReport | None = None) -> TaxiTrack | None:
    """Read one taxi file; return its kept points (None when none is kept). Accounts every line in ``report``."""
    report = report if report is not None else LoadReport()
    report.files += 1
    stem = Path(name.split("!")[-1]).stem
    file_id = int(stem) if stem.isdigit() else None
    start_s, end_s = config.start_s, config.end_s
    t_out: list[float] = []
    lon_out: list[float] = []
    lat_out: list[float] = []
    taxi_id: int | None = None
    seen_lines: set[str] = set()
    lines: list[int] = []
    for lineno, raw in enumerate(stream, start=1):
        report.lines_read += 1
        where = f"{name}:{lineno}"
        line = raw.strip()
        if not line:
            report.skip(SkipReason.BLANK, where)
            continue
        parts = line.split(",")
        if len(parts) != 4:
            report.skip(SkipReason.FIELD_COUNT, where)
            continue
        if parts[0].strip().lower() in ("id", "taxi_id", "taxi"):
            report.skip(SkipReason.HEADER, where)
            continue
        try:
            line_id = int(parts[0])
        except ValueError:
            report.skip(SkipReason.ID_MISMATCH, where)
            continue
        if (file_id is not None and line_id != file_id) or (taxi_id is not None and line_id != taxi_id):
            report.skip(SkipReason.ID_MISMATCH, where)
            continue
        t = _parse_time(parts[1])
        if t is None:
            report.skip(SkipReason.BAD_TIME, where)
            continue
        try:
            lon, lat = float(parts[2]), float(parts[3])
        except ValueError:
            report.skip(SkipReason.BAD_COORDINATE, where)
            continue
        if not (math.isfinite(lon) and math.isfinite(lat)):
            report.skip(SkipReason.BAD_COORDINATE, where)
            continue
        if lon == 0.0 or lat == 0.0:
            report.skip(SkipReason.ZERO_COORDINATE, where)
            continue
        if not (config.lon_min <= lon <= config.lon_max and config.lat_min <= lat <= config.lat_max):
            report.skip(SkipReason.OUTSIDE_AREA, where)
            continue
        if not start_s <= t < end_s:
            report.skip(SkipReason.OUTSIDE_WINDOW, where)
            continue
        key = f"{line_id},{t},{lon},{lat}"
        if key in seen_lines:
            report.skip(SkipReason.DUPLICATE, where)
            continue
        seen_lines.add(key)
        if t_out:
            dt = t - t_out[-1]
            if dt < 0:
                report.skip(SkipReason.OUT_OF_ORDER, where)
                continue
            if dt == 0:
                report.skip(SkipReason.REPEATED_TIME, where)
                continue
        taxi_id = line_id
        t_out.append(t)
        lon_out.append(lon)
        lat_out.append(lat)
        lines.append(lineno)
    keep = _consistent_chain(np.asarray(t_out), np.asarray(lon_out), np.asarray(lat_out), config.max_speed_mps)
    for i in np.flatnonzero(~keep):
        report.skip(SkipReason.SPEED, f"{name}:{lines[i]}")
    report.kept += int(keep.sum())
    t_out = [v for v, k in zip(t_out, keep, strict=True) if k]
    lon_out = [v for v, k in zip(lon_out, keep, strict=True) if k]
    lat_out = [v for v, k in zip(lat_out, keep, strict=True) if k]
    if not t_out:
        return None
    report.taxis_with_points += 1
    return TaxiTrack(taxi_id, np.asarray(t_out), np.asarray(lon_out), np.asarray(lat_out), name)


def _haversine_np(lon1, lat1, lon2, lat2) -> np.ndarray:
    r = 6_371_008.8
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * r * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _consistent_chain(t: np.ndarray, lon: np.ndarray, lat: np.ndarray, max_speed: float,
                      lookback: int = 8) -> np.ndarray:
    """Which points to keep: the longest chain in which consecutive kept points imply at most ``max_speed``.

    GPS glitches are isolated jumps: comparing each point with the previous *kept* one would keep a glitch
    and drop the good points after it (or, when the first point is the glitch, drop the whole taxi). The
    longest consistent chain (dynamic programming over the last ``lookback`` points) drops the glitches
    instead. Ties go to the chain ending latest. Fast path: no violation at all, keep everything.
    """
    n = len(t)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    speed1 = _haversine_np(lon[:-1], lat[:-1], lon[1:], lat[1:]) / (t[1:] - t[:-1])
    if np.all(speed1 <= max_speed):
        return keep
    ok = np.zeros((n, lookback + 1), dtype=bool)  # ok[i, k]: point i - k -> i is plausible
    for k in range(1, lookback + 1):
        if k < n:
            ok[k:, k] = _haversine_np(lon[:-k], lat[:-k], lon[k:], lat[k:]) / (t[k:] - t[:-k]) <= max_speed
    best = np.ones(n, dtype=np.int64)
    back = np.full(n, -1, dtype=np.int64)
    for i in range(1, n):
        for k in range(1, min(lookback, i) + 1):
            if ok[i, k] and best[i - k] + 1 > best[i]:
                best[i], back[i] = best[i - k] + 1, i - k
    end = n - 1 - int(np.argmax(best[::-1]))
    keep[:] = False
    while end >= 0:
        keep[end] = True
        end = back[end]
    return keep


def iter_tracks(path: Path | str, config: ReaderConfig = ReaderConfig(),
                report: LoadReport | None = None) -> Iterator[TaxiTrack]:
    """Stream the taxis under ``path`` one at a time (bounded memory), accounting every line in ``report``."""
    for name, stream in iter_sources(path):
        track = read_stream(name, stream, config, report)
        if track is not None:
            yield track


def check(path: Path | str, config: ReaderConfig = ReaderConfig()) -> LoadReport:
    """Read everything under ``path`` and return the accounting (what `mtwin data check` prints)."""
    report = LoadReport()
    for _ in iter_tracks(path, config, report):
        pass
    report.check()
    return report
