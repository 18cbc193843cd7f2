"""`mtwin demo` (what `make demo` runs): the whole stack on a scenario, with a report.

On the default scenario (the T-Drive replay) it runs ``launch/demo.launch.xml`` (replay in
hardware-in-the-loop mode, perception per RSU and CAV, a local twin and an offloading node per site, the
global twin, the relation learner, the placement, the rviz markers). On a SUMO world (``--scenario
city_conflicts``: the city with imperfect drivers) it generates the stack for the world's layout with the
twin acting on the road: a route follower on every CAV, the route guidance in the cloud, a collision warning
per site whose CAVs told to yield brake. It runs ``--duration`` seconds, records it, and writes into
``runs/<timestamp>/``:

* ``report.md`` / ``report.json``: tracking (MOTA, IDF1 per RSU, site and the global twin), latency per
  stage, offloading (decisions, expected latency, migrations), relations (handover predictions scored
  against where each vehicle really was served later), placement (migrations of twins); on a SUMO world the
  route guidance's decisions, the CAVs' answers to every command and the collision warnings instead;
* ``snapshot.png``: the twin at the end (map, coverage, tracks with trails, servers, offloading links; on a
  SUMO world the signals, the guided routes and the warnings in force);
* ``demo.mcap``: the recording (open it in Foxglove, play it with ``mtwin play``, re-score it with
  ``mtwin eval tracking --recording``);
* ``stack.log``: every node's output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from mobility_twin.cli import command_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the whole stack on the default scenario and write a report in runs/<timestamp>/",
        description=__doc__,
    )
    p.add_argument("--scenario", default="default", help="default (the T-Drive replay, launch/demo.launch.xml), or "
                   "a SUMO world: city_conflicts (the city with route guidance and collision warning), city, a file")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="seconds of the scenario (default 60; 30 on a SUMO world, which runs slower than real time "
                        "on 2 cores)")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start S seconds into the scenario")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="parent of the run folder (default runs/)")
    p.set_defaults(func=run)


class _Acts:
    """What the twin did on the road (SUMO worlds): the route guidance's decisions, the CAVs' answers to every
    command, the collision warnings (on the collector's node)."""

    def __init__(self, node, layout) -> None:
        from mobility_twin.ros import topics
        from mobility_twin.ros.qos import EVENTS
        from mobility_twin.ros.route_commands import GUIDANCE_STATUS_NAMES, STATUS_NAMES
        from mobility_twin_msgs.msg import CollisionWarningArray, RouteCommandStatus, RouteGuidanceStatus

        self.status_names = STATUS_NAMES
        self.guidance_names = GUIDANCE_STATUS_NAMES
        self.guidance: Counter = Counter()
        self.guided: set[str] = set()
        self.expected: list[float] = []
        self.answers: Counter = Counter()  # (kind, status name) of the CAVs' answers
        self.warnings: dict[str, dict] = {}  # warning id -> first message's numbers
        self.cycles = 0
        self.decision_s: list[float] = []
        node.create_subscription(RouteGuidanceStatus, topics.GUIDANCE_STATUS, self._on_guidance, EVENTS)
        node.create_subscription(CollisionWarningArray, topics.COLLISION_WARNINGS, self._on_warnings, EVENTS)
        for cav in layout.cavs:
            node.create_subscription(RouteCommandStatus, topics.cav_route_status(cav.cav_id), self._on_answer, EVENTS)

    def _on_guidance(self, msg) -> None:
        name = self.guidance_names.get(msg.status, str(msg.status))
        self.guidance[name] += 1
        if name in ("routed", "rerouted"):
            self.guided.add(msg.vehicle_id)
            if np.isfinite(msg.expected_travel_time):
                self.expected.append(float(msg.expected_travel_time))

    def _on_answer(self, msg) -> None:
        kind = "route" if msg.command_id.startswith("guidance-") else "speed (collision warning)" \
            if msg.command_id.startswith("collision-") else "other"
        self.answers[(kind, self.status_names.get(msg.status, str(msg.status)))] += 1

    def _on_warnings(self, msg) -> None:
        self.cycles += 1
        self.decision_s.append(float(msg.decision_time))
        for w in msg.warnings:
            if w.warning_id not in self.warnings:
                self.warnings[w.warning_id] = {"kind": int(w.kind), "ttc": float(w.time_to_conflict),
                                               "p": float(w.probability), "vehicles": set()}
            if w.vehicle_id:
                self.warnings[w.warning_id]["vehicles"].add(w.vehicle_id)

    def summary(self) -> dict:
        kinds = Counter(("rear_end", "crossing", "head_on")[min(w["kind"], 2)] for w in self.warnings.values())
        return {
            "guidance": {"decisions": dict(self.guidance), "cavs_guided": sorted(self.guided),
                         "median_expected_travel_time_s": float(np.median(self.expected)) if self.expected else None},
            "cav_answers": {f"{k} {s}": n for (k, s), n in sorted(self.answers.items())},
            "collision_warning": {
                "cycles": self.cycles, "warnings": len(self.warnings), "by_kind": dict(kinds),
                "warnings_to_connected_vehicles": sum(1 for w in self.warnings.values() if w["vehicles"]),
                "median_time_to_conflict_s": float(np.median([w["ttc"] for w in self.warnings.values()]))
                if self.warnings else None,
                "median_cycle_ms": float(1e3 * np.median(self.decision_s)) if self.decision_s else None},
        }


class _Extras:
    """What the demo reports beyond tracking: offloading, relations, placement (on the collector's node)."""

    def __init__(self, node, layout) -> None:
        from mobility_twin.ros import topics
        from mobility_twin.ros.cdr import CdrError, decode_tracks
        from mobility_twin.ros.qos import EVENTS, TWIN_STATE
        from mobility_twin_msgs.msg import (
            MigrationEvent,
            OffloadDecisionArray,
            RelationGraph,
            TrackedObjectArray,
        )

        self._decode, self._error = decode_tracks, CdrError
        self.layout = layout
        self.decisions: list[dict] = []
        self.predictions: list[tuple[float, str, str, str, float]] = []  # stamp, vehicle, current, predicted, h
        self.migrations: list[dict] = []
        self.positions: list[tuple[float, dict[str, tuple[float, float]]]] = []  # global twin, 1 Hz
        for site in layout.sites:
            node.create_subscription(OffloadDecisionArray, topics.offload_decisions(site.site_id),
                                     lambda m, s=site.site_id: self._on_decisions(s, m), EVENTS)
        node.create_subscription(RelationGraph, topics.RELATIONS, self._on_relations, TWIN_STATE)
        node.create_subscription(MigrationEvent, topics.MIGRATIONS, self._on_migration, EVENTS)
        node.create_subscription(TrackedObjectArray, topics.GLOBAL_OBJECTS, self._on_global, TWIN_STATE, raw=True)

    @staticmethod
    def _stamp(header) -> float:
        return header.stamp.sec + header.stamp.nanosec * 1e-9

    def _on_decisions(self, site: str, msg) -> None:
        for d in msg.decisions:
            self.decisions.append({"site": site, "latency": d.expected_latency, "deadline": d.deadline,
                                   "migrated": d.migrated, "queue": msg.deficit_queue, "policy": msg.policy})

    def _on_relations(self, msg) -> None:
        t = self._stamp(msg.header)
        self.predictions += [(t, h.vehicle_id, h.current_server_id, h.predicted_server_id, h.horizon)
                             for h in msg.handovers]

    def _on_migration(self, msg) -> None:
        self.migrations.append({"twin": msg.twin_id, "from": msg.from_host, "to": msg.to_host,
                                "bytes": msg.size_bytes, "seconds": msg.transfer_time, "reason": msg.reason})

    def _on_global(self, data: bytes) -> None:
        try:
            table = self._decode(data)
        except self._error:
            return
        if self.positions and table.stamp - self.positions[-1][0] < 1.0:
            return
        rec = table.records
        keys = [v or f"track_{i}" for v, i in zip(table.vehicle_id, rec["track_id"].tolist(), strict=True)]
        self.positions.append((table.stamp, dict(zip(keys, zip(rec["px"].tolist(), rec["py"].tolist(),
                                                                strict=True), strict=True))))

    def _serving(self, x: float, y: float) -> str:
        """The server serving a vehicle at (x, y) by the twin model's association rule ("" when none)."""
        servers = self.layout.server_set
        k = int(servers.serving(np.array([[x, y]]))[0])
        return servers.ids[k] if k >= 0 else ""

    def summary(self) -> dict:
        out: dict = {}
        if self.decisions:
            lat = np.array([d["latency"] for d in self.decisions])
            deadline = np.array([d["deadline"] for d in self.decisions])
            out["offloading"] = {
                "decisions": len(self.decisions), "policy": self.decisions[-1]["policy"],
                "mean_expected_latency_ms": float(1000 * lat.mean()),
                "deadline_miss_rate": float(np.mean(lat > deadline)),
                "migration_rate": float(np.mean([d["migrated"] for d in self.decisions])),
                "mean_deficit_queue": float(np.mean([d["queue"] for d in self.decisions])),
            }
        times = np.array([p[0] for p in self.positions])
        correct = stay = scored = 0
        for t, vehicle, current, predicted, horizon in self.predictions:
            i = int(np.searchsorted(times, t + horizon))
            if i >= len(times) or abs(times[i] - (t + horizon)) > 1.5 or vehicle not in self.positions[i][1]:
                continue
            actual = self._serving(*self.positions[i][1][vehicle])
            scored += 1
            correct += predicted == actual
            stay += current == actual
        out["relations"] = {"predictions": len(self.predictions), "scored_after_horizon": scored,
                            "handover_accuracy": correct / scored if scored else None,
                            "stay_baseline_accuracy": stay / scored if scored else None}
        out["placement"] = {"migration_events": len(self.migrations),
                            "moves": sum(1 for m in self.migrations if m["from"]),
                            "transfer_seconds": float(sum(m["seconds"] for m in self.migrations))}
        return out


def _acts_markdown(a: dict) -> list[str]:
    g, w = a["guidance"], a["collision_warning"]
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(g["decisions"].items())) or "none"
    answers = ", ".join(f"{k} {v}" for k, v in a["cav_answers"].items()) or "none"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(w["by_kind"].items())) or "none"
    ttc = "n/a" if w["median_time_to_conflict_s"] is None else f"{w['median_time_to_conflict_s']:.1f} s"
    cycle = "n/a" if w["median_cycle_ms"] is None else f"{w['median_cycle_ms']:.0f} ms"
    return ["## The twin acts on the road", "",
            f"{a['replayed_s']:.0f} s of the city replayed in {a['wall_s']:.0f} s (warm-up included): on a small "
            "machine the whole stack runs slower than real time and the hardware-in-the-loop schedule slips.", "",
            f"**Route guidance** (cloud, on the global twin): {len(g['cavs_guided'])} CAVs guided "
            f"({', '.join(g['cavs_guided']) or 'none'}); decisions: {decisions}.", "",
            f"**The CAVs' answers** (each route follower, from the vehicle's drive interface): {answers}.", "",
            f"**Collision warning** (per site, on its local twin, CAVs told to yield brake): {w['warnings']} warnings "
            f"({kinds}), {w['warnings_to_connected_vehicles']} reaching a connected vehicle; median time to conflict "
            f"{ttc}; {w['cycles']} cycles, {cycle} each.", "",
            "The snapshot draws the guided routes (cyan) and the warnings in force (red stars); rviz shows them "
            "under the namespaces routes and warnings.", ""]


def _markdown(results: dict, run_dir: Path) -> str:
    from mobility_twin.evaluation.report import tracking_table

    lines = [f"# mobility_twin demo, {time.strftime('%Y-%m-%d %H:%M')}", "",
             f"Scenario `{results['scenario']}`, {results['duration_s']:g} s of replay in hardware-in-the-loop mode.",
             "", "## Tracking and latency", "", "```", tracking_table(results), "```", ""]
    if "acts" in results:
        lines += _acts_markdown(results["acts"])
    extras = results["extras"]
    if "offloading" in extras:
        o = extras["offloading"]
        lines += ["## Offloading (per site, DITEN actor-critic)", "",
                  f"{o['decisions']} decisions ({o['policy']}): expected latency {o['mean_expected_latency_ms']:.1f} ms "
                  f"on average, deadline missed {100 * o['deadline_miss_rate']:.1f} %, migration rate "
                  f"{o['migration_rate']:.3f}, mean deficit queue {o['mean_deficit_queue']:.2f}.", ""]
    if "acts" in results:  # the city's run has the road applications, not the relation learner and placement
        return "\n".join(lines + _look(run_dir, results["acts"].get("network", "")))
    r = extras["relations"]
    acc = "n/a" if r["handover_accuracy"] is None else f"{100 * r['handover_accuracy']:.1f} %"
    stay = "n/a" if r["stay_baseline_accuracy"] is None else f"{100 * r['stay_baseline_accuracy']:.1f} %"
    lines += ["## Relations (continual GNN)", "",
              f"{r['predictions']} handover predictions; {r['scored_after_horizon']} could be checked after their "
              f"horizon: correct {acc} (staying on the current server would be {stay}).", ""]
    p = extras["placement"]
    lines += ["## Placement", "", f"{p['migration_events']} migration events ({p['moves']} moves of a placed twin, "
              f"{p['transfer_seconds']:.1f} s of transfer in all).", ""]
    return "\n".join(lines + _look(run_dir))


def _look(run_dir: Path, network: str = "") -> list[str]:
    network = f" --network {network}" if network else ""
    return ["## Look at it", "",
              f"- `snapshot.png`: the twin at the end of the run ({run_dir / 'snapshot.png'}).",
              f"- `demo.mcap`: open in Foxglove Studio, or `mtwin play {run_dir / 'demo.mcap'}` with rviz "
              "(`rviz2 -d config/mobility_twin.rviz`) on a full ROS 2 install.",
              f"- `mtwin eval tracking --recording {run_dir / 'demo.mcap'}` re-scores the run from the recording.",
              f"- `mtwin snapshot --recording {run_dir / 'demo.mcap'} --at 30{network}` draws another moment.",
              "- `stack.log`: every node's output.", ""]


def run(args: argparse.Namespace) -> int:
    from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
    from mobility_twin.evaluation.live import RunCollector
    from mobility_twin.evaluation.scoring import score_run
    from mobility_twin.launch_runner.ament import package_share
    from mobility_twin.ros import topics
    from mobility_twin.ros.qos import EVENTS
    from mobility_twin.viz.builder import SceneBuilder
    from mobility_twin.viz.live import LiveScene, LiveTopics, decision_args
    from mobility_twin.viz.snapshot import render
    from mobility_twin_msgs.msg import OffloadDecisionArray
    from mobility_twin_sim.scenario import ScenarioError, load_scenario
    from mobility_twin_sim.world import build_world

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        return command_error("demo", err)
    run_dir = (args.runs_dir / time.strftime("%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    sumo = scenario.world.kind == "sumo"
    if args.duration is None:
        args.duration = 30.0 if sumo else 60.0
    print(f"mtwin demo: the whole stack on scenario {scenario.name!r} for {args.duration:g} s"
          f"{' with route guidance and collision warning' if sumo else ''}; run folder {run_dir}", flush=True)
    world = build_world(scenario, start=False, log=lambda *a: print(*a, flush=True))
    layout = world.layout
    startup_s = 90.0
    if sumo:  # the city's applications act on the road: the launch file is generated for its layout
        network = scenario.world.network
        launch = run_dir / "stack.launch.xml"
        # the road applications and the twins: offloading, relations and placement are the default demo's
        launch.write_text(stack_launch_xml(layout, StackOptions(
            scenario=str(scenario.source), hil=True, offloading=False, relations=False, placement=False,
            network=network, guidance=True, collision_warning=True, output_dir=str(run_dir / "sumo"))))
        # SUMO first simulates its warm-up; the city runs slower than real time on a small machine (HIL slips:
        # the report says how far it got), and the launch ends when the replay has played the duration
        startup_s += 120.0 + world.start_s - world.backend.begin_s + 15.0 * args.duration
    else:
        network = ""
        launch = package_share("mobility_twin") / "launch" / "demo.launch.xml"
    collector = RunCollector(layout, run_dir / "demo.mcap", record_others=True)  # decoded after the run
    builder = SceneBuilder()
    LiveScene(collector.node, builder, LiveTopics(network=network))
    acts = _Acts(collector.node, layout) if sumo else None
    for site in layout.sites:  # the offloading links of every site's offloading node
        collector.node.create_subscription(
            OffloadDecisionArray, topics.offload_decisions(site.site_id),
            lambda m: builder.on_decisions(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, decision_args(m),
                                           received=time.time()), EVENTS)
    extras = _Extras(collector.node, layout)
    log = (run_dir / "stack.log").open("w")
    os.environ["MTWIN_STATE_DIR"] = str(run_dir / "state")  # a run never resumes another's ids
    proc = subprocess.Popen(
        [sys.executable, "-m", "mobility_twin.cli", "launch", str(launch), f"duration_s:={args.duration}",
         f"start_offset_s:={args.start}", "hil:=true", "--duration", str(args.duration + startup_s)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    collector.yield_to_stack()
    started = time.monotonic()
    status = 0
    scene = acting = None
    try:
        last = last_scene = started
        while proc.poll() is None:
            collector.spin(0.5)
            now = time.monotonic()
            if now - last_scene > 2.0 and collector.received[topics.GLOBAL_OBJECTS]:
                last_scene = now  # the picture of the last moment the stack was fully running
                scene = builder.scene()
                if scene.warnings:  # the picture of the twin acting: the last moment with a warning in force
                    acting = scene
            if now - last > 10.0:
                last = now
                print(f"  [{now - started:4.0f} s] {collector.progress()}", flush=True)
        collector.spin(1.0)
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        print("interrupted: reporting what was recorded")
        status = 130
    finally:
        scene = scene or builder.scene()
        collector.close({"run": "mtwin demo", "scenario": scenario.name})
        log.close()
    if proc.returncode not in (0, None, -15):
        print(f"the stack ended with status {proc.returncode}: see {run_dir / 'stack.log'}")
        status = status or proc.returncode
    render(acting or scene, run_dir / "snapshot.png")
    results = score_run(collector.decode())
    results.update(scenario=scenario.name, duration_s=args.duration, run_folder=str(run_dir), extras=extras.summary())
    if acts is not None:
        results["acts"] = acts.summary()
        results["acts"]["replayed_s"] = collector.received[topics.GROUND_TRUTH] * scenario.time.slot_s
        results["acts"]["wall_s"] = time.monotonic() - started
        results["acts"]["network"] = network
    (run_dir / "report.json").write_text(json.dumps(results, indent=2, default=str))
    report = _markdown(results, run_dir)
    (run_dir / "report.md").write_text(report)
    print()
    print(report)
    ok = results["tracking"].get("global", {}).get("num_frames", 0) > 0
    if not ok:
        print("no global twin output was scored: see stack.log", file=sys.stderr)
        status = status or 1
    return status
