"""Simulator throughput: trajectory replay, streaming a full-week full-fleet load, and LiDAR ray casting.

1. Trajectory replay without sensors: 1,000 taxis sampled at 1 s slots (the fleet sampler alone, and
   the whole replay engine with ground truth, edge-server truth and odometry). Target: >= 50x real time.
2. Streaming memory: a synthetic full week of the full T-Drive fleet (10,357 taxis, ~1,450 fixes each,
   ~15 million lines: the bundled taxis repeated with time shifts and new ids), read line by line into the
   time-bucketed spool and replayed at 60 s slots. Peak resident memory is sampled throughout.
   Target: <= 2 GB. `--quick` streams one day of the full fleet instead of the week.
3. LiDAR: 8 RSUs with 32 x 1024 beams at 10 Hz on the default scenario. Target: real-time factor >= 1.0.
4. SUMO world (issue 16), on the synthetic Beijing CBD network with calibrated T-Drive demand:
   a. without sensors, stepped at 0.1 s through libsumo with every road user read each slot.
      Target: >= 1,000 vehicles at >= 5x real time; peak memory reported;
   b. with 8 RSU LiDARs (at the busiest signalised junctions) and 4 CAV LiDARs, 32 x 1024 at 10 Hz,
      buildings on every city block occluding them. Target: >= 1.0x real time;
   c. every T-Drive fix of the CBD data accounted for (used + skipped == read);
   d. the calibrated mean taxi speed within 15% of the T-Drive-observed one (the calibration simulates the
      hour with the ``sumo`` program at 0.5 s steps; the bench's own 0.1 s run is reported beside it).
   The calibration runs once (several simulated hours, minutes of CPU) and is cached with the network
   and the demand (``$MTWIN_SUMO_CACHE``); ``--sumo-scale`` skips it with a fixed scale.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

SUMMARY = "simulator: trajectory replay speed, full-week full-fleet streaming memory, LiDAR real-time factor"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one day of the full fleet instead of a week; "
                        "shorter SUMO runs")
    parser.add_argument("--taxis", type=int, default=10_357, help="fleet size of the streaming test")
    parser.add_argument("--lidar-seconds", type=float, default=20.0, help="sim seconds of LiDAR to cast")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the synthetic data (temp)")
    parser.add_argument("--only", choices=("all", "replay", "sumo"), default="all",
                        help="replay: the T-Drive replay measurements (1-3); sumo: the SUMO world (4); the other "
                             "part's results are kept from the last run in sim.json")
    parser.add_argument("--sumo-seconds", type=float, default=None,
                        help="simulated seconds of each SUMO measurement (default 60, --quick 20)")
    parser.add_argument("--sumo-scale", type=float, default=0.0,
                        help="SUMO demand scale (0: calibrated against T-Drive speeds, cached)")


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


# ------------------------------------------------------------------------------------------------ SUMO world
SUMO_START = "2008-02-02 16:10:00"  # as the city scenario: 10 minutes into the T-Drive hour (warm-up before)


def _sumo_world(scale: float, seconds: float, run_dir: Path):
    from mobility_twin_sim.sumo import DemandSection, SumoSetup, SumoWorld, SumoWorldConfig

    config = SumoWorldConfig(demand=DemandSection(scale=scale))
    setup = SumoSetup(start=SUMO_START, duration_s=seconds + 5.0, slot_s=0.1, seed=7, cav_count=4)
    return SumoWorld(config, setup, run_dir=run_dir, log=lambda *a: print(*a, flush=True))


def bench_sumo(seconds: float, scale: float, workdir: Path | None) -> tuple[dict, dict]:
    """4a-4d on one SUMO world (one warm-up): ``seconds`` without sensors, then ``seconds`` with the LiDARs."""
    import numpy as np

    from mobility_twin_core.model import ObjectClass
    from mobility_twin_sim.lidar import STRUCTURE, Lidar, SensorPose
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.sumo.demand import read_tripinfo, taxi_speeds

    scenario = load_scenario("default")  # the LiDARs of the default scenario
    run_dir = Path(tempfile.mkdtemp(prefix="mtwin_bench_sumo_", dir=workdir))
    world = _sumo_world(scale, 2 * seconds, run_dir)
    try:
        with PeakMemory() as mem:
            start = time.perf_counter()
            world.open()
            open_s = time.perf_counter() - start
            # 4a: stepping and reading every road user, no sensors
            vehicles, users = [], []
            t = world.start_s
            load0 = os.getloadavg()[0]
            wall0, cpu0 = time.perf_counter(), time.process_time()
            while t < world.start_s + seconds - 1e-9:
                t = round(t + world.slot_s, 6)
                state = world.advance(t)
                users.append(len(state.vehicles))
                vehicles.append(int(np.sum(state.vehicles.object_class != ObjectClass.PEDESTRIAN)))
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            plain_peak = mem.peak
            # 4b: the same world with 8 RSU and 4 CAV LiDARs (each at 10 Hz) and building occlusion
            junctions = world.busiest_junctions(8, scenario.rsus.layout.min_separation_m)
            rsu_poses = [SensorPose(x, y, scenario.rsus.mount_height_m, 0.0) for _, x, y in junctions]
            structures = world.statics.structures
            rsu_lidar = Lidar(scenario.rsus.lidar, structures)
            cav_lidar = Lidar(scenario.cavs.lidar, structures)
            cavs = [c.cav_id for c in world.layout.cavs]
            frames = points = on_structures = on_vehicles = step = 0
            end = t + seconds
            load1 = os.getloadavg()[0]
            wall1, cpu1 = time.perf_counter(), time.process_time()
            while t < end - 1e-9:
                t = round(t + world.slot_s, 6)
                state = world.advance(t)
                boxes = state.vehicles.boxes()
                rngs = [np.random.default_rng([7, 1, i, step]) for i in range(len(rsu_poses))]
                scans = rsu_lidar.scan_many(rsu_poses, boxes, rngs)
                poses, own = [], []
                for c in cavs:
                    pose = world.cav_lidar_pose(c, state)
                    if pose is not None:
                        poses.append(pose)
                        own.append(world.cav_vehicle(c, state))
                rngs = [np.random.default_rng([7, 2, i, step]) for i in range(len(poses))]
                scans += cav_lidar.scan_many(poses, boxes, rngs, own)
                for sc in scans:
                    frames += 1
                    points += len(sc)
                    on_structures += int(np.sum(sc.hit_vehicle == STRUCTURE))
                    on_vehicles += int(np.sum(sc.hit_vehicle >= 0))
                step += 1
            wall_s, cpu_s = time.perf_counter() - wall1, time.process_time() - cpu1
            written = world.close()
        info = world.demand.info
        run_speeds = taxi_speeds(read_tripinfo(run_dir / "tripinfo.xml"), world.demand.observed_s)
        plain = {
            "network": world.network.name, "label": world.network.label, "sim_s": seconds, "slot_s": world.slot_s,
            "start": SUMO_START, "open_s": open_s, "rtf": seconds / wall, "rtf_cpu": seconds / cpu,
            "ms_per_slot": 1000 * wall / len(users), "cpu_ms_per_slot": 1000 * cpu / len(users),
            "load_average": load0, "mean_vehicles": float(np.mean(vehicles)), "min_vehicles": int(np.min(vehicles)),
            "mean_road_users": float(np.mean(users)), "peak_rss_mb": plain_peak / 2**20,
            "scale": info.get("scale"), "fixes": info.get("fixes"), "trips": info.get("trips"),
            "calibration": info.get("calibration"), "background": info.get("background"),
            "run_taxi_speeds": run_speeds, "counters": written.get("counters"), "signals": len(world._tls),
        }
        sensors = {
            "sim_s": seconds, "rsus": len(rsu_poses), "cavs": len(cavs), "buildings": len(structures or ()),
            "frames": frames, "rtf": seconds / wall_s, "rtf_cpu": seconds / cpu_s, "load_average": load1,
            "ms_per_slot": 1000 * wall_s / max(1, step), "points_per_frame": points / max(1, frames),
            "share_on_buildings": on_structures / max(1, points), "share_on_vehicles": on_vehicles / max(1, points),
            "peak_rss_mb": mem.peak / 2**20, "rsu_junctions": [j for j, _, _ in junctions],
        }
        return plain, sensors
    finally:
        world.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def _sumo_targets(sumo: dict, sensors: dict) -> list[dict]:
    rows = []
    enough = sumo["min_vehicles"] >= 1000
    rows.append({"target": "SUMO world, no sensors: >= 1,000 vehicles at 0.1 s at >= 5x real time",
                 "measured": f"{sumo['mean_vehicles']:.0f} vehicles (min {sumo['min_vehicles']}), "
                             f"{sumo['mean_road_users']:.0f} road users with pedestrians; {sumo['rtf']:.2f}x real time "
                             f"wall ({sumo['ms_per_slot']:.1f} ms per slot), {sumo['rtf_cpu']:.2f}x in CPU time; "
                             f"load average {sumo['load_average']:.1f} on {os.cpu_count()} cores; "
                             f"peak RSS {sumo['peak_rss_mb']:.0f} MB",
                 "verdict": _speed_verdict(enough, sumo["rtf"], sumo["rtf_cpu"], 5.0)})
    rows.append({"target": "SUMO world with 8 RSU + 4 CAV LiDARs and building occlusion: >= 1.0x real time",
                 "measured": f"{sensors['rtf']:.2f}x real time wall, {sensors['rtf_cpu']:.2f}x in CPU time (all threads; "
                             f"load average {sensors['load_average']:.1f}), {sensors['frames']} frames, "
                             f"{sensors['buildings']} buildings, {sensors['share_on_buildings']:.1%} of points on "
                             f"buildings, {sensors['share_on_vehicles']:.1%} on road users, "
                             f"peak RSS {sensors['peak_rss_mb']:.0f} MB",
                 "verdict": _speed_verdict(sensors["rsus"] == 8 and sensors["cavs"] == 4, sensors["rtf"],
                                           sensors["rtf_cpu"], 1.0)})
    fixes = sumo.get("fixes") or {}
    balanced = fixes and fixes["used"] + fixes["skipped"] == fixes["read"]
    rows.append({"target": "every T-Drive fix of the CBD data accounted for (used + skipped == read)",
                 "measured": f"read {fixes.get('read')}, used {fixes.get('used')}, skipped {fixes.get('skipped')}",
                 "verdict": "met" if balanced else "MISSED"})
    cal = (sumo.get("calibration") or {}).get("chosen")
    if cal:
        err = cal["simulated_mps"] / cal["observed_mps"] - 1.0
        run = sumo["run_taxi_speeds"]
        rows.append({"target": "calibrated mean taxi speed within 15% of T-Drive's",
                     "measured": f"scale {cal['scale']:g}: simulated {cal['simulated_mps']:.2f} m/s vs observed "
                                 f"{cal['observed_mps']:.2f} m/s ({err:+.1%}) over {cal['trips']} taxi trips, "
                                 f"{cal['teleports']:.0f} teleports of {cal['inserted']:.0f} vehicles (0.5 s steps); "
                                 f"the bench's own 0.1 s run: {run['simulated_mps']:.2f} vs {run['observed_mps']:.2f} m/s "
                                 f"over the {run['trips']} taxi trips that ended in it (from 16:00, while the network "
                                 f"fills up)",
                     "verdict": "met" if abs(err) <= 0.15 else "MISSED"})
    else:
        rows.append({"target": "calibrated mean taxi speed within 15% of T-Drive's",
                     "measured": f"not calibrated: fixed scale {sumo['scale']}",
                     "verdict": "not judged: run without --sumo-scale to calibrate"})
    return rows


SUMO_TARGETS = ("SUMO", "every T-Drive", "calibrated")


def _split(rows: list[dict], targets: list[dict]) -> dict[str, tuple[list[dict], list[dict]]]:
    """Table rows and targets of the T-Drive replay part and of the SUMO part."""
    sumo_rows = [r for r in rows if r["measure"].startswith("SUMO")]
    sumo_targets = [t for t in targets if t["target"].startswith(SUMO_TARGETS)]
    return {"replay": ([r for r in rows if r not in sumo_rows], [t for t in targets if t not in sumo_targets]),
            "sumo": (sumo_rows, sumo_targets)}


def _previous_results(out: Path | None) -> dict:
    import json

    from mobility_twin_bench.common import RESULTS

    path = Path(out or RESULTS) / "sim.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _speed_verdict(valid: bool, wall_rtf: float, cpu_rtf: float, target: float) -> str:
    if not valid:
        return "MISSED"
    if wall_rtf >= target:
        return "met"
    return "met in CPU time, MISSED in wall time (shared machine)" if cpu_rtf >= target else "MISSED"


def _replay_targets(traj: dict, stream: dict, lidar: dict) -> list[dict]:
    return [
        {"target": "fleet sampler, 1,000 taxis at 1 s slots: >= 50x real time", "measured": f"{traj['sampler_rtf']:.0f}x",
         "verdict": "met" if traj["sampler_rtf"] >= 50 else "MISSED"},
        {"target": "T-Drive replay engine without sensors: >= 50x real time", "measured": f"{traj['engine_rtf']:.0f}x",
         "verdict": "met" if traj["engine_rtf"] >= 50 else "MISSED"},
        {"target": "streaming a full-fleet load: <= 2 GB peak", "measured": f"{stream['peak_rss_mb']:.0f} MB "
         f"({stream['days']} d x {stream['taxis']} taxis)", "verdict": "met" if stream["peak_rss_mb"] <= 2048 else "MISSED"},
        {"target": "LiDAR, 8 RSUs 32 x 1024 at 10 Hz: >= 1.0x real time", "measured": f"{lidar['rtf']:.2f}x",
         "verdict": "met" if lidar["rtf"] >= 1.0 else "MISSED"},
    ]


def run(args: argparse.Namespace) -> int:
    from mobility_twin_bench.common import format_table, write_results

    days = 1 if args.quick else 7
    payload: dict = {}
    rows: list[dict] = []
    targets: list[dict] = []
    if args.only in ("all", "replay"):
        print("trajectory replay (1,000 taxis, 1 s slots) ...", flush=True)
        traj = bench_trajectories()
        print(f"streaming a synthetic {days}-day load of {args.taxis} taxis (writes ~{days * 90} MB of text) ...",
              flush=True)
        stream = bench_streaming(args.taxis, days, args.workdir)
        print("LiDAR (8 RSUs, 32 x 1024, 10 Hz) ...", flush=True)
        lidar = bench_lidar(args.lidar_seconds)
        rows += [
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
        payload.update(trajectories=traj, streaming=stream, lidar=lidar)
        targets += _replay_targets(traj, stream, lidar)
    if args.only in ("all", "sumo"):
        seconds = args.sumo_seconds or (20.0 if args.quick else 60.0)
        print(f"SUMO world: {seconds:g} s at 0.1 s without sensors, then {seconds:g} s with 8 RSU + 4 CAV LiDARs "
              "and buildings ...", flush=True)
        sumo, sensors = bench_sumo(seconds, args.sumo_scale, args.workdir)
        rows += [
            {"measure": f"SUMO {sumo['network']} (synthetic), no sensors, {sumo['mean_vehicles']:.0f} vehicles",
             "value": sumo["rtf"], "unit": "x real time", "target": ">= 5 at >= 1,000 vehicles"},
            {"measure": "SUMO world peak memory", "value": sumo["peak_rss_mb"], "unit": "MB peak RSS", "target": ""},
            {"measure": f"SUMO + 8 RSU + 4 CAV LiDARs, {sensors['buildings']} buildings", "value": sensors["rtf"],
             "unit": "x real time", "target": ">= 1.0"},
            {"measure": "SUMO + LiDARs peak memory", "value": sensors["peak_rss_mb"], "unit": "MB peak RSS", "target": ""},
        ]
        payload.update(sumo=sumo, sumo_sensors=sensors)
        targets += _sumo_targets(sumo, sensors)
    parts = _split(rows, targets)
    if args.only != "all":  # keep the other part's results from the last run
        previous = _previous_results(args.out)
        other = "sumo" if args.only == "replay" else "replay"
        split = _split(previous.get("table", []), previous.get("targets", []))
        kept = previous.get("parts", {}).get(other) or {"table": split[other][0], "targets": split[other][1]}
        if kept["table"]:
            keys = ("sumo", "sumo_sensors") if other == "sumo" else ("trajectories", "streaming", "lidar")
            payload.update({k: previous[k] for k in keys if k in previous})
            parts[other] = (kept["table"], kept["targets"])
            print(f"(the {other} part is kept from {previous.get('machine', {}).get('time', 'the last run')})")
    rows = parts["replay"][0] + parts["sumo"][0]
    targets = parts["replay"][1] + parts["sumo"][1]
    print()
    print(format_table(rows, ["measure", "value", "unit", "target"], title="simulator benchmark"))
    print(format_table(targets, ["target", "measured", "verdict"], title="\nTargets"))
    path = write_results("sim", {**payload, "table": rows, "targets": targets,
                                 "parts": {k: {"table": v[0], "targets": v[1]} for k, v in parts.items()}}, args.out)
    print(f"\nwrote {path}")
    return 0
