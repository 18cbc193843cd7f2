"""Simulator throughput: trajectory replay, streaming a full-week full-fleet load, and LiDAR ray casting.

1. Trajectory replay without sensors: 1,000 taxis sampled at 1 s slots (the fleet sampler alone, and
   the whole replay engine with ground truth, edge-server truth and odometry). Target: >= 50x real time.
2. Streaming memory: a synthetic full week of the full T-Drive fleet (10,357 taxis, ~1,450 fixes each,
   ~15 million lines: the bundled taxis repeated with time shifts and new ids), read line by line into the
   time-bucketed spool and replayed at 60 s slots. Peak resident memory is sampled throughout.
   Target: <= 2 GB. `--quick` streams one day of the full fleet instead of the week.
3. LiDAR: 8 RSUs with 32 x 1024 beams at 10 Hz on the default scenario. Target: real-time factor >= 1.0.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import threading
import time
from pathlib import Path

SUMMARY = "simulator: trajectory replay speed, full-week full-fleet streaming memory, LiDAR real-time factor"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one day of the full fleet instead of a week")
    parser.add_argument("--taxis", type=int, default=10_357, help="fleet size of the streaming test")
    parser.add_argument("--lidar-seconds", type=float, default=20.0, help="sim seconds of LiDAR to cast")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the synthetic data (temp)")


class PeakMemory:
    """Samples this process's resident memory every 50 ms; ``peak`` in bytes."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def bench_trajectories() -> dict:
    import numpy as np

    from mobility_twin_sim.fleet import Fleet
    from mobility_twin_sim.geo import LocalENU
    from mobility_twin_sim.replay import Replay, ReplayOptions
    from mobility_twin_sim.scenario import scenario_from_dict
    from mobility_twin_sim.tdrive import BUNDLED, iter_tracks
    from mobility_twin_sim.world import build_world

    projection = LocalENU(116.4468, 39.9135)
    fleet = Fleet.from_tracks(iter_tracks(BUNDLED / "cbd"), projection, max_gap_s=600.0)
    ids = fleet.taxi_ids[:1000]
    keep = np.isin(fleet.taxi_ids, ids)
    counts = np.diff(fleet.offsets)[keep]
    rows = np.repeat(keep, np.diff(fleet.offsets))
    small = Fleet(ids, np.concatenate([[0], np.cumsum(counts)]), fleet.t[rows], fleet.x[rows], fleet.y[rows],
                  max_gap_s=600.0)
    t0 = small.time_range[0] + 300.0
    slots = 3600
    start = time.perf_counter()
    present = 0
    for state in small.slots(1.0, t0, t0 + slots - 1):
        present += len(state)
    sampler_s = time.perf_counter() - start
    scenario = scenario_from_dict({
        "name": "bench_trajectories", "area": {"box_m": [-3000, -3000, 3000, 3000], "load_margin_m": 0.0},
        "time": {"start": "2008-02-02 16:00:00", "duration_s": 600.0, "slot_s": 1.0, "max_gap_s": 600.0},
        "rsus": {"layout": {"kind": "positions"}, "positions": [[0, 0]]}, "cavs": {"count": 0},
    })
    world = build_world(scenario)
    replay = Replay(world, ReplayOptions(lidar=False))
    start = time.perf_counter()
    gt_vehicles = []
    for tick in replay:
        if tick.ground_truth is not None:
            gt_vehicles.append(len(tick.ground_truth.state))
    engine_s = time.perf_counter() - start
    return {
        "taxis": len(small),
        "slots": slots,
        "mean_present": present / slots,
        "sampler_rtf": slots / sampler_s,
        "sampler_ms_per_slot": 1000 * sampler_s / slots,
        "engine_taxis_loaded": len(world.fleet),
        "engine_mean_present": float(sum(gt_vehicles) / len(gt_vehicles)),
        "engine_rtf": scenario.time.duration_s / engine_s,
    }


def write_synthetic_week(folder: Path, taxis: int, days: int) -> int:
    """T-Drive files for ``taxis`` taxis over ``days`` days: bundled tracks repeated with time shifts.

    Taxi i replays bundled taxi (i mod n) ``copies`` times, shifted by evenly spaced offsets through the
    period, so that each synthetic taxi has about 1,450 fixes per week, as the real release has.
    """
    from mobility_twin_sim.tdrive import BUNDLED, iter_tracks

    sources = [tr for tr in iter_tracks(BUNDLED / "cbd") if len(tr) >= 8]
    period = days * 86400.0
    lines_per_taxi = int(1450 * days / 7)
    written = 0
    folder.mkdir(parents=True, exist_ok=True)
    import numpy as np

    for i in range(taxis):
        src = sources[i % len(sources)]
        copies = max(1, math.ceil(lines_per_taxi / len(src)))
        shifts = np.arange(copies)[:, None] * (period / copies)
        t = (src.t[None, :] - src.t[0] + shifts).ravel() + 1201910400 + 8 * 3600  # from 2008-02-02 00:00 local
        stamps = np.datetime_as_string(t.astype("datetime64[s]"), unit="s")
        lon, lat = np.tile(src.lon, copies), np.tile(src.lat, copies)
        taxi_id = 20_000 + i
        text = "".join(f"{taxi_id},{st[:10]} {st[11:]},{lo:.5f},{la:.5f}\n"
                       for st, lo, la in zip(stamps, lon, lat, strict=True))
        (folder / f"{taxi_id}.txt").write_text(text)
        written += len(t)
    return written


def bench_streaming(taxis: int, days: int, workdir: Path | None) -> dict:
    from mobility_twin_sim.geo import LocalENU
    from mobility_twin_sim.spool import TrajectorySpool
    from mobility_twin_sim.tdrive import LoadReport, iter_tracks

    root = Path(tempfile.mkdtemp(prefix="mtwin_bench_week_", dir=workdir))
    try:
        start = time.perf_counter()
        lines = write_synthetic_week(root / "tdrive", taxis, days)
        generate_s = time.perf_counter() - start
        report = LoadReport()
        with PeakMemory() as mem:
            start = time.perf_counter()
            spool = TrajectorySpool.build(iter_tracks(root / "tdrive", report=report), LocalENU(116.4, 39.9),
                                          root / "spool")
            load_s = time.perf_counter() - start
            t0, t1 = spool.time_range
            start = time.perf_counter()
            slots = present = 0
            for state in spool.slots(60.0, t0, t1 - 60.0, max_gap_s=600.0):
                slots += 1
                present += len(state)
            replay_s = time.perf_counter() - start
        report.check()
        return {
            "days": days, "taxis": taxis, "lines": lines, "kept": report.kept,
            "skipped": report.skipped_total, "generate_s": generate_s, "load_s": load_s,
            "lines_per_s": lines / load_s, "replay_slots": slots, "replay_s": replay_s,
            "mean_present": present / max(1, slots), "peak_rss_mb": mem.peak / 2**20,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_lidar(seconds: float) -> dict:
    from mobility_twin_sim.replay import Replay, ReplayOptions
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    world = build_world(load_scenario("default"))
    replay = Replay(world, ReplayOptions(cav_lidar=False))
    replay.step()  # warm up open3d
    replay.seek(30.0)
    frames = points = rays = 0
    start = time.perf_counter()
    while replay.position < 30.0 + seconds:
        tick = replay.step()
        for f in tick.frames:
            frames += 1
            points += len(f.scan)
            rays += f.scan.rays
    wall = time.perf_counter() - start
    return {
        "rsus": len(world.rsus), "beams": f"{world.scenario.rsus.lidar.channels}x{world.scenario.rsus.lidar.azimuth_steps}",
        "rate_hz": world.scenario.rsus.lidar.rate_hz, "sim_s": seconds, "frames": frames,
        "rtf": seconds / wall, "rays_per_s": rays / wall, "points_per_s": points / wall,
        "ms_per_frame": 1000 * wall / max(1, frames),
    }


def run(args: argparse.Namespace) -> int:
    from mobility_twin_bench.common import format_table, write_results

    days = 1 if args.quick else 7
    print("trajectory replay (1,000 taxis, 1 s slots) ...", flush=True)
    traj = bench_trajectories()
    print(f"streaming a synthetic {days}-day load of {args.taxis} taxis (writes ~{days * 90} MB of text) ...",
          flush=True)
    stream = bench_streaming(args.taxis, days, args.workdir)
    print("LiDAR (8 RSUs, 32 x 1024, 10 Hz) ...", flush=True)
    lidar = bench_lidar(args.lidar_seconds)
    rows = [
        {"measure": "fleet sampler, 1,000 taxis, 1 s slots", "value": traj["sampler_rtf"], "unit": "x real time",
         "target": ">= 50"},
        {"measure": f"replay engine (no sensors), {traj['engine_taxis_loaded']} taxis loaded",
         "value": traj["engine_rtf"], "unit": "x real time", "target": ">= 50"},
        {"measure": f"streaming {stream['days']} d x {stream['taxis']} taxis, {stream['lines']:,} lines",
         "value": stream["peak_rss_mb"], "unit": "MB peak RSS", "target": "<= 2048"},
        {"measure": "streaming load speed", "value": stream["lines_per_s"], "unit": "lines/s", "target": ""},
        {"measure": "LiDAR 8 RSUs 32x1024 at 10 Hz", "value": lidar["rtf"], "unit": "x real time", "target": ">= 1.0"},
        {"measure": "LiDAR rays", "value": lidar["rays_per_s"] / 1e6, "unit": "M rays/s", "target": ""},
        {"measure": "LiDAR points", "value": lidar["points_per_s"] / 1e6, "unit": "M points/s", "target": ""},
    ]
    print()
    print(format_table(rows, ["measure", "value", "unit", "target"], title="simulator benchmark"))
    path = write_results("sim", {"trajectories": traj, "streaming": stream, "lidar": lidar, "table": rows}, args.out)
    print(f"\nwrote {path}")
    return 0
