"""Make the T-Drive subset shipped in sim/data/tdrive/cbd/ from a folder of T-Drive files.

Selects every taxi with at least one valid fix within HALF_M metres (a square) of CENTRE and copies its
whole file, line for line (no line is changed), so the subset is ordinary T-Drive data.

    python scripts/make_tdrive_subset.py ../shared/data/tdrive/city sim/data/tdrive/cbd
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.tdrive import iter_tracks

CENTRE = (116.4468, 39.9135)  # Jianguomen / CBD, the densest 2 km square of the 16:00-17:00 extract
HALF_M = 1500.0


def main(src: Path, dst: Path) -> None:
    projection = LocalENU(*CENTRE)
    dst.mkdir(parents=True, exist_ok=True)
    chosen = 0
    for track in iter_tracks(src):
        x, y = projection.forward(track.lon, track.lat)
        if np.any((np.abs(x) <= HALF_M) & (np.abs(y) <= HALF_M)):
            shutil.copyfile(track.source, dst / Path(track.source).name)
            chosen += 1
    print(f"copied {chosen} taxi files into {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
