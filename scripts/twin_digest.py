"""The local twins' fusion, offline, timed per input kind and summed up in one digest of every track state.

    python scripts/twin_digest.py [--scenario dense] [--duration 40] [--repeat 2] [--out FILE.json]

A scenario's replay is perceived once (the offline pipeline's ``TickFusion``: V2X relays, RSU and CAV LiDAR
through the detector), and its frames are then fed again and again to fresh local twins, the way the nodes
feed them. Prints, per input kind (v2x, rsu, cav), the frames and the median and mean ingest time (ms, the
fastest of ``--repeat`` runs), and a SHA-256 over every track's id, state, covariance, existence, status,
last update and box after every tick: two checkouts whose digests are equal fuse to the same bits, so a
change meant to be faster and nothing else can be checked with it (run it in both, on the same scenario).
Writes the same as JSON with ``--out``.

The perceived frames are cached in ``--cache`` (default: a file per scenario and duration in the system's
temporary folder), since perception takes most of the first run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

KINDS = ("v2x", "rsu", "cav")


def perceive(scenario: str, duration_s: float) -> tuple[object, list]:
    """The world and its ticks' frames as [(t, [(kind, source id, Detections), ...]), ...]."""
    from mobility_twin.evaluation.offline import TickFusion, local_twins_for
    from mobility_twin_sim.replay import Replay
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    world = build_world(load_scenario(scenario))
    replay = Replay(world)
    fusion = TickFusion(world, local_twins_for(world))
    ticks = []
    while replay.next_time() is not None and replay.next_time() <= duration_s:
        tick = replay.step()
        ticks.append((tick.t, fusion.feed(tick)))
    return world, ticks


def fuse(world, ticks: list) -> tuple[dict[str, list[float]], str]:
    """Feed every frame to fresh local twins; returns the ingest times (ms) per kind and the digest."""
    from mobility_twin.evaluation.offline import TickFusion, local_twins_for

    local = local_twins_for(world)
    fusion = TickFusion(world, local)  # its routing: a CAV's frame goes to every site's twin
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    digest = hashlib.sha256()
    for _, frames in ticks:
        relays = [(kind, source, replace(d)) for kind, source, d in frames if kind == "v2x"]
        if relays:  # an instant's relays together, as a local twin node takes them
            t0 = time.perf_counter()
            fusion.ingest_relays(relays)
            times["v2x"] += [1000.0 * (time.perf_counter() - t0) / len(relays)] * len(relays)
        for kind, source, detections in frames:
            if kind == "v2x":
                continue
            t0 = time.perf_counter()
            fusion.ingest(kind, source, replace(detections))
            times[kind].append(1000.0 * (time.perf_counter() - t0) / (len(local) if kind == "cav" else 1))
        for site in sorted(local):
            tr = local[site].tracker.state.tracks
            for array in (tr.ids, tr.x, tr.P, tr.existence, tr.status, tr.last_update, tr.dims):
                digest.update(np.ascontiguousarray(array).tobytes())
    return times, digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="dense", help="shipped scenario name or file (default dense)")
    parser.add_argument("--duration", type=float, default=40.0, help="scenario seconds (default 40)")
    parser.add_argument("--repeat", type=int, default=2, help="runs; each frame's fastest time is kept (default 2)")
    parser.add_argument("--cache", type=Path, default=None, help="the perceived frames' cache file")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    if args.repeat < 1 or args.duration <= 0:
        raise SystemExit("--repeat must be >= 1 and --duration > 0")
    name = Path(args.scenario).stem
    cache = args.cache or Path(tempfile.gettempdir()) / f"mtwin_twin_digest_{name}_{args.duration:g}s.pkl"
    if cache.is_file():
        from mobility_twin_sim.scenario import load_scenario
        from mobility_twin_sim.world import build_world

        world, ticks = build_world(load_scenario(args.scenario)), pickle.loads(cache.read_bytes())
        print(f"frames from {cache}", flush=True)
    else:
        print(f"perceiving {args.duration:g} s of {args.scenario} (once; cached in {cache}) ...", flush=True)
        world, ticks = perceive(args.scenario, args.duration)
        cache.write_bytes(pickle.dumps(ticks))
    best, digests = None, set()
    for _ in range(args.repeat):
        times, digest = fuse(world, ticks)
        digests.add(digest)
        best = times if best is None else {k: np.minimum(best[k], times[k]).tolist() for k in KINDS}
    if len(digests) != 1:
        print(f"the runs fused to different states: {sorted(digests)}", file=sys.stderr)
        return 1
    rows = {k: {"frames": len(v), "median_ms": float(np.median(v)) if v else None,
                "mean_ms": float(np.mean(v)) if v else None} for k, v in best.items()}
    print(f"{'kind':5s} {'frames':>7s} {'median ms':>10s} {'mean ms':>8s}")
    for kind, row in rows.items():
        if row["frames"]:
            print(f"{kind:5s} {row['frames']:7d} {row['median_ms']:10.3f} {row['mean_ms']:8.3f}")
    print(f"digest {digests.pop()}")
    if args.out is not None:
        args.out.write_text(json.dumps({"scenario": args.scenario, "duration_s": args.duration, "ingest": rows,
                                        "digest": digest}, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
