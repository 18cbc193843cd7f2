"""The whole perception-to-global-twin pipeline in one process, without ROS, scored against ground truth.

The same library code the nodes run (detector, local twins with every input channel: RSUs, CAVs with their
self-reports, V2X reports relayed by the edge servers; global twin), driven by the replay engine,
so tracking quality can be measured quickly and deterministically, and so that each RSU *alone* (one
tracker fed by that RSU only) can be compared with the fused twins on the same ground truth: the gain
from fusion. The ROS evaluation (``mtwin eval tracking``) scores the real multi-process run.

Evaluated regions: an RSU alone is scored within ``eval_range_m`` of it; a local twin within that range
of its site's RSUs; the global twin within that range of every RSU, and also restricted to each RSU's
disc (to compare with that RSU alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from mobility_twin.evaluation.mot import DiscRegion, MotEvaluator, overlapping_bodies
from mobility_twin.perception import SOURCE_CAV, SOURCE_RSU, LidarDetector, SensorPose2D
from mobility_twin.perception.reports import self_report, v2x_report_detections
from mobility_twin.tracking import MultiSourceTracker, TrackerConfig
from mobility_twin.twin import GlobalTwin, LocalTwin, LocalTwinConfig
from mobility_twin.twin.channels import default_channels


@dataclass(frozen=True)
class OfflineOptions:
    duration_s: float = 120.0
    start_s: float = 0.0
    warmup_s: float = 3.0  # tracks need a few frames to be confirmed: not scored
    eval_range_m: float = 60.0
    snapshot_period_s: float = 0.1  # local twins report to the global twin at least this often ...
    event_snapshots: bool = True  # ... and right after each tick that fused a frame (the node's event_publish)
    tracker: TrackerConfig = TrackerConfig()
    # sensors silent (their frames never reach a twin: the sensor or its link down) as (sensor id or "*" for
    # every sensor, from, to) in scenario seconds: how the twins ride out an outage, without ROS
    outages: tuple[tuple[str, float, float], ...] = ()

    def silent(self, sensor_id: str, t: float) -> bool:
        return any(s in ("*", sensor_id) and t0 <= t < t1 for s, t0, t1 in self.outages)


@dataclass
class OfflineResult:
    metrics: dict[str, dict]
    timings_ms: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def local_twins_for(world, tracker: TrackerConfig = TrackerConfig()) -> dict[str, LocalTwin]:
    """One local twin per site of the world, with its RSUs, area, edge servers and the shipped input channels."""
    layout, channels = world.layout, default_channels()
    twins = {}
    for i, site in enumerate(layout.sites):
        rsus = tuple(r.rsu_id for r in layout.rsus_of(site.site_id))
        config = LocalTwinConfig(site.site_id, rsus=rsus, area=site.polygon, tracker=tracker,
                                 demand_hz_per_vehicle=world.scenario.edge_servers.demand_hz_per_vehicle)
        twins[site.site_id] = LocalTwin(config, layout.servers_of(site.site_id), channels=channels,
                                        id_offset=(i + 1) * 10_000_000)
    return twins


class TickFusion:
    """One replay tick perceived and fused into the local twins ``local`` as the nodes do it: each V2X report
    into the twin of the site of the edge server that relays it; each RSU frame through its detector into its
    site's twin; each CAV frame through its detector, with the CAV's self-report from its odometry, into every
    twin (each keeps what falls in its area). Sensors ``silent`` at a tick's time send nothing."""

    def __init__(self, world, local: dict[str, LocalTwin], silent=None) -> None:
        self.world, self.local = world, local
        self.silent = silent
        self.detectors: dict[str, LidarDetector] = {}
        self.odometry: dict[str, object] = {}  # newest odometry of each CAV (its self-report, as cav_perception sends it)
        self.site_of_rsu = {r.rsu_id: r.site_id for r in world.rsus}
        self.site_of_server = {e.server_id: e.site_id for e in world.edge_servers}
        self.timings_ms: dict[str, list[float]] = {"perception": [], "local_twin": []}
        self.fused: set[str] = set()  # the sites whose twin took a frame in the last tick fed

    def feed(self, tick) -> list[tuple[str, str, object]]:
        """Fuse ``tick``; returns every detection frame made, as (kind: v2x/rsu/cav, source id, Detections);
        :attr:`fused` names the sites whose twin took one."""
        out = []
        self.fused = set()
        for odo in tick.odometry:
            self.odometry[odo.cav_id] = odo
        relays = [("v2x", report.server_id, v2x_report_detections(self.world, report, tick.t)) for report in tick.v2x]
        self.fused |= self.ingest_relays(relays)
        out += relays
        for f in tick.frames:
            if self.silent is not None and self.silent(f.sensor_id, tick.t):
                continue
            det = self.detectors.setdefault(f.sensor_id, LidarDetector())
            p = f.pose
            t0 = time.perf_counter()
            d = det.detect(f.scan.points, SensorPose2D(p.x, p.y, p.z, p.yaw), source_id=f.sensor_id,
                           source_type=SOURCE_RSU if f.kind == "rsu" else SOURCE_CAV, stamp=f.stamp)
            self.timings_ms["perception"].append(1000 * (time.perf_counter() - t0))
            if f.kind == "rsu":
                t0 = time.perf_counter()
                self.fused |= self.ingest("rsu", f.sensor_id, d)
                self.timings_ms["local_twin"].append(1000 * (time.perf_counter() - t0))
            else:
                odo = self.odometry.get(f.sensor_id)
                if odo is not None:
                    d = self_report(d, f.sensor_id, odo.x, odo.y, odo.yaw, odo.speed, odo.sigma_position)
                self.fused |= self.ingest("cav", f.sensor_id, d)
            out.append((f.kind, f.sensor_id, d))
        return out

    def ingest_relays(self, relays: list[tuple[str, str, object]]) -> set[str]:
        """The V2X relays (("v2x", server id, Detections)) of one instant into their servers' sites' twins, each
        site's together, as a local twin node takes the relays that arrive together. Returns the sites whose twin
        took one."""
        by_site: dict[str, list] = {}
        for _, server_id, d in relays:
            by_site.setdefault(self.site_of_server[server_id], []).append((d, "v2x", server_id))
        return {site for site, items in by_site.items() if any(self.local[site].ingest_many(items))}

    def ingest(self, kind: str, source_id: str, d) -> set[str]:
        """One perceived frame (``kind`` v2x, rsu or cav, as :meth:`feed` returns them) into the twins that fuse
        it, as the nodes route it: a V2X relay to its server's site, an RSU frame to its site, a CAV frame to
        every site. Returns the sites whose twin took it."""
        if kind == "v2x":
            site = self.site_of_server[source_id]
            return {site} if self.local[site].ingest(d, "v2x", source_id) else set()
        if kind == "rsu":
            site = self.site_of_rsu[source_id]
            return {site} if self.local[site].ingest(d, "rsu_lidar", source_id) else set()
        return {site for site, twin in self.local.items() if twin.ingest(replace(d), "cav_lidar", source_id)}


def run_offline(world, options: OfflineOptions = OfflineOptions(), progress=None) -> OfflineResult:
    from mobility_twin_sim.replay import Replay

    replay = Replay(world)
    replay.seek(options.start_s)
    end = options.start_s + options.duration_s
    rsu_alone = {r.rsu_id: MultiSourceTracker(options.tracker) for r in world.rsus}
    local = local_twins_for(world, options.tracker)
    global_twin = GlobalTwin()
    rsu_xy = {r.rsu_id: (r.x, r.y) for r in world.rsus}
    r_eval = options.eval_range_m
    evaluators = {f"rsu/{rid}": MotEvaluator(f"rsu/{rid}", DiscRegion.of([xy], r_eval)) for rid, xy in rsu_xy.items()}
    for site in world.sites:
        centres = [rsu_xy[r.rsu_id] for r in world.rsus if r.site_id == site.site_id]
        evaluators[f"local/{site.site_id}"] = MotEvaluator(f"local/{site.site_id}", DiscRegion.of(centres, r_eval))
    evaluators["global"] = MotEvaluator("global", DiscRegion.of(list(rsu_xy.values()), r_eval))
    for rid, xy in rsu_xy.items():
        evaluators[f"global@{rid}"] = MotEvaluator(f"global@{rid}", DiscRegion.of([xy], r_eval))
    fusion = TickFusion(world, local, silent=options.silent)
    timings = {**fusion.timings_ms, "global_twin": []}
    last_snapshot = dict.fromkeys(local, -np.inf)
    wall0 = time.monotonic()
    while not replay.finished and replay.position <= end:
        tick = replay.step()
        for kind, sensor_id, d in fusion.feed(tick):
            if kind == "rsu":
                rsu_alone[sensor_id].update(d)
        due = [sid for sid in local if (options.event_snapshots and sid in fusion.fused)
               or tick.t - last_snapshot[sid] >= options.snapshot_period_s - 1e-9]
        if due:
            t0 = time.perf_counter()
            for sid in due:
                last_snapshot[sid] = tick.t
                snap = local[sid].snapshot(tick.t)
                global_twin.ingest(snap.site_id, tick.t, snap.tracks)
            global_twin.update_staleness(tick.t)
            timings["global_twin"].append(1000 * (time.perf_counter() - t0))
        if tick.ground_truth is None or replay.position < options.start_s + options.warmup_s:
            continue
        gt, boxes = tick.ground_truth.state, tick.ground_truth.boxes
        gxy = np.stack([gt.x, gt.y], axis=1)
        ignore = overlapping_bodies(gxy, gt.heading, boxes.length, boxes.width)
        for rid, tracker in rsu_alone.items():
            h = tracker.confirmed_at(tick.t)
            evaluators[f"rsu/{rid}"].add(gt.ids, gxy, h.ids, h.x[:, :2], ignore)
        for sid, twin in local.items():
            h = twin.tracker.confirmed_at(tick.t)
            evaluators[f"local/{sid}"].add(gt.ids, gxy, h.ids, h.x[:, :2], ignore)
        h = global_twin.tracks_at(tick.t)
        for name, ev in evaluators.items():
            if name.startswith("global"):
                ev.add(gt.ids, gxy, h.ids, h.x[:, :2], ignore)
        if progress is not None:
            progress(replay.position - options.start_s, options.duration_s, time.monotonic() - wall0)
    metrics = {name: ev.summary() for name, ev in evaluators.items()}
    counts = {"handovers": global_twin.stats["handovers"], "global_births": global_twin.stats["births"]}
    return OfflineResult(metrics, timings, counts)
