"""T-Drive taxi trajectories: streaming reader with line accounting, and the data shipped in the repo."""

from pathlib import Path

from .reader import (
    BEIJING,
    LoadReport,
    ReaderConfig,
    SkipReason,
    TaxiTrack,
    TDriveError,
    check,
    iter_sources,
    iter_tracks,
    read_stream,
)

#: The T-Drive subset shipped with the repository (see its SOURCE.md).
BUNDLED = Path(__file__).resolve().parents[1] / "data" / "tdrive"

__all__ = [
    "BEIJING",
    "BUNDLED",
    "LoadReport",
    "ReaderConfig",
    "SkipReason",
    "TDriveError",
    "TaxiTrack",
    "check",
    "iter_sources",
    "iter_tracks",
    "read_stream",
]
