#!/usr/bin/env python3
"""Run the peer trackers on recorded per-RSU detection streams and write their hypotheses.

Runs in the peers' environment (.venv-peers, made by `make peers-env`: norfair 2.3 needs numpy < 2, so it
cannot share the project's environment). Plain Python: it imports nothing of mobility_twin but the two
numpy-only modules of mobility_twin/evaluation it shares with the project (the file format and the
AB3DMOT-style baseline), as top-level modules from ``--lib``.

For every stream ``<streams>/<rsu_id>.npz`` and every peer, a fresh tracker is fed every frame in order;
after each frame its reported tracks (ids, positions) are kept, and the wall time of its step: from the
frame's arrays to the ids and positions of its reported tracks (building the library's input objects,
the update, reading its output), the span the project's tracker is timed over; the libraries are imported
and the objects alive frozen out of the garbage collector (gc.freeze) before, as the benchmark does for the
project's tracker. Written to
``<out>/<peer>/<rsu_id>.npz``, plus ``<out>/peers.json`` (versions, settings). Scoring is not done here:
the benchmark scores every tracker with the project's code (py-motmetrics).

Settings (identical across peers where they have the notion: a detection matches a track within 2 m of
its centre; every tracker starts on the stream's first frame and is scored after the same warm-up):

* norfair: ``Tracker(distance_function="euclidean", distance_threshold=2.0)`` on the box centre (one point
  per detection), its OptimizedKalmanFilterFactory; hit_counter_max, initialization_delay and the
  filter's R from a small grid on `default` (``--grid``), then frozen in SETTINGS.
* motpy: ``MultiObjectTracker`` with its default motion model (constant velocity, static box size),
  ``dt`` the stream's frame period, and a matching function of its documented interface
  (``BaseMatchingFunction``) that pairs box centres within 2 m by the Hungarian algorithm (motpy's own
  matches by IoU, which has no distance); q_var_pos, max_staleness and min_steps_alive from a grid.
* ab3dmot: the baseline of ab3dmot.py (constant-velocity Kalman filter, Hungarian assignment, 3 hits to
  confirm, 2 s max age); process noise and output rule from a grid.

Usage: .venv-peers/bin/python scripts/peers/run_peers.py --streams DIR --out DIR [--peers norfair,motpy,ab3dmot]
       [--grid]   (every setting of each peer's grid, written as <peer>@<n>; see --help)
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIB = ROOT / "ros2_ws/src/mobility_twin/mobility_twin/evaluation"
MATCH_DISTANCE_M = 2.0

#: Each peer's settings, frozen after its grid below on `default` (60 s, 8 RSUs; the best MOTA + IDF1 overall,
#: `mtwin bench trackers --tune --duration 60`). Grid spread (MOTA / IDF1): norfair 0.967-0.972 / 0.960-0.978
#: (its defaults, hit_counter_max 15, 0.971 / 0.977), motpy 0.948-0.958 / 0.945-0.949, ab3dmot 0.946-0.969 /
#: 0.926-0.955 (reporting only the tracks updated in the frame, SORT's rule, is what helps it).
SETTINGS = {
    "norfair": {"hit_counter_max": 20, "initialization_delay": None, "R": 4.0, "Q": 0.1},
    "motpy": {"q_var_pos": 70.0, "r_var_pos": 1.0, "max_staleness": 12, "min_steps_alive": 3},
    "ab3dmot": {"accel_noise": 1.0, "measurement_sigma_m": 0.3, "output_coasting": False},
}

#: The grids tried (``--grid``): the documented defaults and one or two values around them.
GRIDS = {
    # hit_counter_max 15 is norfair's default, 20 frames = 2 s at 10 Hz; initialization_delay None is
    # norfair's default (hit_counter_max / 2), 2 confirms on the 3rd hit; R = 4 is its filter's default
    "norfair": {"hit_counter_max": [10, 15, 20], "initialization_delay": [None, 2], "R": [4.0, 0.25], "Q": [0.1]},
    # motpy's defaults: q_var_pos 70, r_var_pos 1, max_staleness 12, min_steps_alive -1
    "motpy": {"q_var_pos": [70.0, 5.0], "r_var_pos": [1.0], "max_staleness": [12, 20], "min_steps_alive": [-1, 3]},
    # the baseline's definition is fixed (2 m, 3 hits, 2 s); its noise and which tracks it reports are not
    "ab3dmot": {"accel_noise": [1.0, 3.0, 10.0], "measurement_sigma_m": [0.3],
                "output_coasting": [True, False]},
}


class NorfairPeer:
    name = "norfair"

    def __init__(self, settings: dict, frame_period_s: float) -> None:
        import norfair

        self._norfair = norfair
        self.tracker = norfair.Tracker(
            distance_function="euclidean", distance_threshold=MATCH_DISTANCE_M,
            hit_counter_max=settings["hit_counter_max"], initialization_delay=settings["initialization_delay"],
            filter_factory=norfair.OptimizedKalmanFilterFactory(R=settings["R"], Q=settings["Q"]))

    def step(self, frame) -> tuple[np.ndarray, np.ndarray]:
        detections = [self._norfair.Detection(points=p.reshape(1, 2)) for p in frame.xy]
        objects = self.tracker.update(detections=detections)
        ids = np.array([o.id for o in objects], dtype=np.int64)
        xy = np.array([o.estimate[0] for o in objects], dtype=float).reshape(-1, 2)
        return ids, xy


class MotpyPeer:
    name = "motpy"

    def __init__(self, settings: dict, frame_period_s: float) -> None:
        import motpy
        from motpy.tracker import BaseMatchingFunction
        from scipy.optimize import linear_sum_assignment

        class CentreDistance(BaseMatchingFunction):
            """Pairs (tracker index, detection index) whose box centres are within 2 m, Hungarian."""

            def __call__(self, trackers, detections):
                if not trackers or not detections:
                    return np.zeros((0, 2), dtype=np.int64)
                a = np.array([t.box() for t in trackers], dtype=float)
                b = np.array([d.box for d in detections], dtype=float)
                ca, cb = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
                d = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
                gated = d <= MATCH_DISTANCE_M
                rows, cols = linear_sum_assignment(np.where(gated, d, 1e6))
                ok = gated[rows, cols]
                return np.stack([rows[ok], cols[ok]], axis=1).astype(np.int64)

        self._motpy = motpy
        model = {"order_pos": 1, "dim_pos": 2, "order_size": 0, "dim_size": 2,
                 "q_var_pos": settings["q_var_pos"], "r_var_pos": settings["r_var_pos"]}
        self.tracker = motpy.MultiObjectTracker(
            dt=frame_period_s, model_spec=model, matching_fn=CentreDistance(),
            tracker_kwargs={"max_staleness": settings["max_staleness"]},
            active_tracks_kwargs={"min_steps_alive": settings["min_steps_alive"]})
        self._ids: dict[str, int] = {}

    def step(self, frame) -> tuple[np.ndarray, np.ndarray]:
        # axis-aligned footprint of the box: motpy tracks a box; only its centre is matched and reported
        c, s = np.abs(np.cos(frame.yaw)), np.abs(np.sin(frame.yaw))
        half = 0.5 * np.stack([frame.dims[:, 0] * c + frame.dims[:, 1] * s,
                               frame.dims[:, 0] * s + frame.dims[:, 1] * c], axis=1)
        boxes = np.concatenate([frame.xy - half, frame.xy + half], axis=1)
        detections = [self._motpy.Detection(box=b, score=float(p))
                      for b, p in zip(boxes, frame.confidence, strict=True)]
        tracks = self.tracker.step(detections=detections)
        ids = np.array([self._ids.setdefault(t.id, len(self._ids) + 1) for t in tracks], dtype=np.int64)
        xy = np.array([(t.box[:2] + t.box[2:]) / 2 for t in tracks], dtype=float).reshape(-1, 2)
        return ids, xy


class Ab3dmotPeer:
    name = "ab3dmot"

    def __init__(self, settings: dict, frame_period_s: float) -> None:
        from ab3dmot import Ab3dmotBaseline, BaselineConfig

        self.tracker = Ab3dmotBaseline(BaselineConfig(match_distance_m=MATCH_DISTANCE_M, confirm_hits=3,
                                                      max_age_s=2.0, **settings))

    def step(self, frame) -> tuple[np.ndarray, np.ndarray]:
        self.tracker.update(frame.stamp, frame.xy)
        return self.tracker.confirmed()


PEERS = {p.name: p for p in (NorfairPeer, MotpyPeer, Ab3dmotPeer)}
PACKAGES = {"norfair": "norfair", "motpy": "motpy", "ab3dmot": None}


def run_peer(peer_cls, settings: dict, stream, name: str, fmt) -> object:
    peer = peer_cls(settings, stream.frame_period_s)
    out, times = [], []
    for frame in stream.frames():
        t0 = time.perf_counter()
        ids, xy = peer.step(frame)
        times.append(1000.0 * (time.perf_counter() - t0))
        out.append((ids, xy))
    return fmt.Hypotheses.from_frames(name, stream.rsu_id, stream.stamps, out, times, {"settings": settings})


def grid_of(peer: str) -> list[dict]:
    keys = list(GRIDS[peer])
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(GRIDS[peer][k] for k in keys))]


def versions() -> dict:
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for pkg in ("norfair", "motpy", "filterpy", "scipy"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # a missing package is reported, not fatal here
            out[pkg] = None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=Path, required=True, help="folder of <rsu_id>.npz streams")
    p.add_argument("--out", type=Path, required=True, help="folder for <peer>/<rsu_id>.npz hypotheses")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    p.add_argument("--grid", action="store_true", help="run every setting of each peer's grid (as <peer>@<n>)")
    p.add_argument("--lib", type=Path, default=DEFAULT_LIB,
                   help="folder of stream_format.py and ab3dmot.py (default: the checkout's)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(args.lib))
    import stream_format as fmt

    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        p.error(f"unknown peer(s) {unknown}; known: {list(PEERS)}")
    paths = fmt.stream_paths(args.streams)
    if not paths:
        print(f"run_peers: no stream (*.npz) in {args.streams}", file=sys.stderr)
        return 2
    streams = [fmt.load_stream(path) for path in paths]
    for peer in names:  # import the libraries before timing, and keep what is alive out of the collections
        PEERS[peer]({**SETTINGS[peer]}, 0.1)
    gc.collect()
    gc.freeze()
    runs = {}
    for peer in names:
        settings_list = grid_of(peer) if args.grid else [SETTINGS[peer]]
        for i, settings in enumerate(settings_list):
            name = f"{peer}@{i}" if args.grid else peer
            t0 = time.perf_counter()
            for stream in streams:
                fmt.save_hypotheses(args.out / name / f"{stream.rsu_id}.npz",
                                    run_peer(PEERS[peer], settings, stream, name, fmt))
            runs[name] = {"peer": peer, "settings": settings, "package": PACKAGES[peer]}
            print(f"run_peers: {name} {settings} on {len(streams)} streams in {time.perf_counter() - t0:.1f} s",
                  flush=True)
    (args.out / "peers.json").write_text(json.dumps({"versions": versions(), "match_distance_m": MATCH_DISTANCE_M,
                                                     "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
