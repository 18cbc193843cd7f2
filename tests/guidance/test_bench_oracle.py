"""The guidance benchmark's oracle: time-dependent fastest routes on recorded road times (real network); what
the bench lets the twin see."""

import math
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("sumolib")


def test_the_oracle_is_never_slower_than_a_driven_route_and_avoids_a_closure():
    from mobility_twin.guidance import RoadGraph, Router
    from mobility_twin_bench.guidance import FILL_INTERVALS, Case, recorded_times, td_cost, td_fastest
    from mobility_twin_sim.sumo import load_network

    graph = RoadGraph.from_net_file(load_network("beijing_cbd").net_file)
    case = Case("t", incident_at_s=600.0, incident_s=300.0, end_s=1200.0)
    route, _ = Router(graph).route(graph.index["A0A1"], graph.index["I5I6"])
    ff = graph.free_flow_s
    # every road of the free-flow route is three times slower from 500 s on (a jam the oracle can avoid), and its
    # second road five times slower for one car entering at 1,100 s
    passes = [(e, 500.0 + 10 * k, 500.0 + 10 * k + 3 * ff[e]) for k in range(20) for e in route]
    passes.append((route[1], 1100.0, 1100.0 + 5 * ff[route[1]]))
    closed = route[len(route) // 2]
    tt = recorded_times(passes, graph, case, closed)
    assert tt.shape == (math.ceil(case.end_s / 60.0) + 1, len(graph))
    assert np.isinf(tt[10, closed]) and np.isfinite(tt[16, closed])  # closed 600-900 s only
    e = route[1]
    assert tt[8, e] == pytest.approx(3 * ff[e])  # entered then: their mean
    # nobody entered it in these intervals: the mean of the passes within FILL_INTERVALS of them (interval 8's at
    # 5, 18's at 15), else of all its passes (at 0, nothing near: 20 at 3x and one at 5x)
    assert FILL_INTERVALS == 3
    assert tt[5, e] == pytest.approx(3 * ff[e]) and tt[15, e] == pytest.approx(5 * ff[e])
    assert tt[0, e] == pytest.approx((20 * 3 + 5) / 21 * ff[e])
    untouched = next(i for i in range(len(graph)) if i not in route)
    assert (tt[:, untouched] == ff[untouched]).all()  # a road nobody entered: its free flow
    before = td_fastest(tt, graph, route[0], route[-1], 0.0)
    assert before <= td_cost(tt, route[1:], 0.0) + 1e-9
    during = td_fastest(tt, graph, route[0], route[-1], 600.0)
    assert math.isinf(td_cost(tt, route[1:], 600.0))  # its own route is closed
    assert math.isfinite(during) and during < 3 * before


def test_the_twin_sees_the_cavs_the_connected_the_rsus_and_what_the_cavs_sensors_reach():
    from dataclasses import replace

    from mobility_twin_bench.guidance import RSU_RANGE_M, Case, is_connected, seen_by_twin

    case = Case("t", seed=3, v2x_share=0.0, cav_sensor_m=40.0)
    ids = ["cav", "near_cav", "far", "near_rsu", "beyond_rsu"]
    pos = np.array([[0.0, 0.0], [39.0, 0.0], [500.0, 500.0], [1000.0, RSU_RANGE_M - 1.0], [1000.0, RSU_RANGE_M + 1.0]])
    rsu = np.array([[1000.0, 0.0]])
    assert seen_by_twin(ids, pos, {"cav"}, rsu, case).tolist() == [True, True, False, True, False]
    # without the CAVs' sensors, or without RSUs, those vehicles are not seen
    blind = replace(case, cav_sensor_m=0.0)
    assert seen_by_twin(ids, pos, {"cav"}, np.zeros((0, 2)), blind).tolist() == [True, False, False, False, False]
    # no CAV at all: nothing is seen through a CAV's sensors
    assert seen_by_twin(ids, pos, set(), rsu, case).tolist() == [False, False, False, True, False]
    # every vehicle connected: all seen, wherever they are
    everyone = replace(case, v2x_share=1.0)
    assert all(is_connected(v, everyone) for v in ids)
    assert seen_by_twin(ids, pos, set(), np.zeros((0, 2)), everyone).all()


def test_the_headline_across_seeds_gives_each_arms_mean_and_the_twins_paired_differences():
    from mobility_twin_bench.guidance import across_seeds, cases

    names = [c.name for c in cases(True, 7, 8, [11, 8, 12, 11])]
    assert names == ["headline", "headline_seed2", "no_incident", "headline_extra_seed11", "headline_extra_seed12"]

    def result(seed, twin, device, none, twin_all, none_all, gap):
        return {"case": {"seed": seed}, "oracle": {"gap_to_oracle": gap},
                "arms": {"no_guidance": {"cav_mean_s": none, "all_mean_s": none_all},
                         "sumo_rerouting": {"cav_mean_s": device, "all_mean_s": 0.0},
                         "twin": {"cav_mean_s": twin, "all_mean_s": twin_all}}}

    results = {"headline": result(7, 99.0, 100.0, 120.0, 200.0, 200.0, 0.08),
               "headline_seed2": result(8, 102.0, 100.0, 120.0, 198.0, 200.0, 0.12),
               "headline_extra_seed11": result(11, 96.0, 100.0, 120.0, 202.0, 200.0, 0.10)}
    out = across_seeds(results, list(results))
    assert out["seeds"] == [7, 8, 11]
    assert out["cav_mean_s"] == pytest.approx({"no_guidance": 120.0, "sumo_rerouting": 100.0, "twin": 99.0})
    device = out["twin_vs"]["sumo_rerouting"]
    assert device["per_seed"] == pytest.approx([-0.01, 0.02, -0.04])
    assert device["mean"] == pytest.approx(-0.01)
    # t interval of three values: mean +- 4.303 * sd / sqrt(3), sd = 0.03
    lo, hi = device["ci95"]
    assert (lo, hi) == pytest.approx((-0.01 - 4.303 * 0.03 / math.sqrt(3), -0.01 + 4.303 * 0.03 / math.sqrt(3)), abs=1e-4)
    assert out["twin_vs"]["no_guidance"]["mean"] == pytest.approx(99.0 / 120.0 - 1.0)
    assert out["all_vehicles_twin_vs_no_guidance"]["mean"] == pytest.approx(0.0)
    gap = out["gap_to_oracle"]
    assert (gap["mean"], gap["min"], gap["max"]) == pytest.approx((0.10, 0.08, 0.12))


def test_all_connected_cases_rerun_each_headline_seeds_twin_with_every_vehicle_connected():
    """--all-connected: the twin arm of each headline seed again with every vehicle connected, compared with that
    seed's own no-guidance and device runs, and never taken for a headline seed (across_seeds, the targets)."""
    from mobility_twin_bench.guidance import ALL_CONNECTED, base_case, cases, is_headline

    quick = cases(True, 7, 8, [11], all_connected=True)
    extra = [c for c in quick if c.name.endswith(ALL_CONNECTED)]
    assert [c.name for c in extra] == ["headline_all_connected", "headline_seed2_all_connected",
                                       "headline_extra_seed11_all_connected"]
    assert [base_case(c, quick) for c in extra] == ["headline", "headline_seed2", "headline_extra_seed11"]
    by_name = {c.name: c for c in quick}
    for c in extra:  # the base case's world and sensing, every vehicle connected, the twin arm only
        base = by_name[base_case(c, quick)]
        assert not is_headline(c.name) and c.v2x_share == 1.0 != base.v2x_share
        assert replace(c, name=base.name, v2x_share=base.v2x_share, arms=base.arms) == base and c.arms == ("twin",)
    assert [c.name for c in quick if is_headline(c.name)] == ["headline", "headline_seed2", "headline_extra_seed11"]
    # without the flag: none in the quick run, the first seed's in the full sweep
    assert not [c for c in cases(True, 7, 8, [11]) if c.name.endswith(ALL_CONNECTED)]
    full = cases(False, 7, 8)
    assert [c.name for c in full if c.name.endswith(ALL_CONNECTED)] == ["headline_all_connected"]
    by_name = {c.name: c for c in full}
    assert base_case(by_name["rsus_24"], full) == base_case(by_name["delay_2s"], full) == "headline"
    # a case with every arm is its own base (the day without the incident is not the headline's world)
    assert base_case(by_name["no_incident"], full) == "no_incident"
    assert base_case(by_name["cav_share_50"], full) == "cav_share_50"


def test_sweep_seeds_run_the_sweep_at_each_seed_against_that_seeds_headline():
    """--sweep-seeds: every setting of the sweep again at each seed, named <setting>@seed<s>, each twin-only one
    compared with the headline at its own seed (added when it is not a headline seed already: the second seed's
    is headline_seed2); a seed given twice, or the headline's own, runs once; --quick has no sweep."""
    from mobility_twin_bench.guidance import (
        ALL_CONNECTED,
        SWEEP_PREFIXES,
        base_case,
        cases,
        is_headline,
        sweep_setting,
    )

    todo = cases(False, 7, 8, [1, 11], False, [1, 8, 7, 1])
    names = [c.name for c in todo]
    assert len(names) == len(set(names))
    first = [c for c in todo if c.name.startswith(SWEEP_PREFIXES) and "@" not in c.name]
    assert {c.seed for c in first} == {7}
    for s in (1, 8):
        at = [c for c in todo if c.name.endswith(f"@seed{s}")]
        assert [sweep_setting(c.name) for c in at] == [c.name for c in first]
        for c, f in zip(at, first, strict=True):  # the same setting, at seed s
            assert c.seed == s and replace(c, name=f.name, seed=7) == f
    # one headline a seed, more seeds' and sweep seeds' alike; the sweep's all-connected run at each sweep seed
    assert [c.name for c in todo if is_headline(c.name)] == ["headline", "headline_seed2", "headline_extra_seed1",
                                                             "headline_extra_seed11"]
    connected = [c for c in todo if c.name.endswith(ALL_CONNECTED)]
    assert [(c.name, c.seed) for c in connected] == [
        ("headline_all_connected", 7), ("headline_seed2_all_connected", 8), ("headline_extra_seed1_all_connected", 1)]
    assert {sweep_setting(c.name) for c in connected} == {"all_connected"}
    by_name = {c.name: c for c in todo}
    assert base_case(by_name["rsus_0@seed1"], todo) == "headline_extra_seed1"
    assert base_case(by_name["delay_2s@seed8"], todo) == "headline_seed2"
    assert base_case(by_name["headline_extra_seed1_all_connected"], todo) == "headline_extra_seed1"
    assert base_case(by_name["rsus_0"], todo) == "headline"
    assert base_case(by_name["cav_share_50@seed1"], todo) == "cav_share_50@seed1"
    assert cases(True, 7, 8, [], False, [1]) == cases(True, 7, 8)


def test_the_bench_summarises_each_sweep_setting_over_the_sweep_seeds(tmp_path, monkeypatch, capsys):
    """run() with --sweep-seeds, its SUMO runs and oracle stood in for (a CAV's time made of its arm, seed and
    setting): each setting's row has the means over the seeds of its own runs, or of its seed's headline for
    the baselines of a twin-only setting, and the twin's paired differences to the device; --quick with
    --sweep-seeds, or sweep seeds that add none to --seed, are refused before any run."""
    import argparse
    import json

    import mobility_twin_bench.guidance as G

    base_s = {"no_guidance": 200.0, "sumo_rerouting": 170.0, "twin": 172.0}

    def cav_s(case, arm):  # fewer RSUs: the twin slower; a higher CAV share: every arm slower
        return base_s[arm] + case.seed + (10.0 if arm == "twin" and case.rsus == 0 else 0.0) + 20.0 * case.cav_share

    _stand_in_sumo(monkeypatch, G, cav_s)
    args = argparse.Namespace(quick=True, seed=7, second_seed=8, more_seeds=[], all_connected=False,
                              sweep_seeds=[1], jobs=1, workdir=tmp_path / "runs", out=tmp_path)
    assert G.run(args) == 2 and "--sweep-seeds" in capsys.readouterr().err
    args.quick, args.sweep_seeds = False, [7, 7]
    assert G.run(args) == 2 and "give other seeds" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    args.sweep_seeds = [1]
    assert G.run(args) == 0
    out = json.loads((tmp_path / "guidance.json").read_text())
    sweep = out["sweep_across_seeds"]
    assert sweep["seeds"] == [7, 1]
    assert out["headline_across_seeds"]["seeds"] == [7, 8, 1]  # the sweep seed's headline among the headline seeds
    rows = {r["setting"]: r for r in sweep["rows"]}
    assert next(iter(rows)) == "headline"
    assert {"rsus_0", "cav_share_50", "delay_2s", "cav_sensors_off", "all_connected"} <= set(rows)
    share = 0.1
    assert rows["headline"]["twin_s"] == pytest.approx(172.0 + 4.0 + 20.0 * share)
    assert rows["rsus_0"]["twin_s"] == pytest.approx(182.0 + 4.0 + 20.0 * share)  # its own runs
    assert rows["rsus_0"]["sumo_rerouting_s"] == pytest.approx(170.0 + 4.0 + 20.0 * share)  # its seeds' headlines
    assert rows["cav_share_50"]["no_guidance_s"] == pytest.approx(200.0 + 4.0 + 10.0)
    rel = [(182.0 + s + 2.0) / (170.0 + s + 2.0) - 1.0 for s in (7, 1)]
    assert sweep["settings"]["rsus_0"]["twin_vs"]["sumo_rerouting"]["per_seed"] == pytest.approx(rel)
    assert rows["rsus_0"]["twin_vs_device"].startswith(f"{sum(rel) / 2:+.1%} [")
    assert "The sweep at seeds [7, 1]" in capsys.readouterr().out


def test_the_bench_compares_all_connected_runs_with_their_own_seeds_baselines(tmp_path, monkeypatch):
    """run() with --all-connected, its SUMO runs and oracle stood in for (each arm's CAVs take a time made of its
    arm, seed and sensing): each all-connected twin is compared with its own seed's no-guidance and device runs,
    the headline seeds' summary leaves them out, and the targets table reports them."""
    import argparse
    import json

    import mobility_twin_bench.guidance as G

    base_s = {"no_guidance": 200.0, "sumo_rerouting": 170.0, "twin": 172.0}

    def cav_s(case, arm):  # every vehicle observed: the twin 3 s faster
        return base_s[arm] + case.seed - (3.0 if case.v2x_share == 1.0 else 0.0)

    _stand_in_sumo(monkeypatch, G, cav_s)
    args = argparse.Namespace(quick=True, seed=7, second_seed=8, more_seeds=[11], all_connected=True,
                              sweep_seeds=[], jobs=1, workdir=tmp_path / "runs", out=tmp_path)
    assert G.run(args) == 0
    out = json.loads((tmp_path / "guidance.json").read_text())
    assert out["headline_across_seeds"]["seeds"] == [7, 8, 11]
    for name, seed in (("headline", 7), ("headline_seed2", 8), ("headline_extra_seed11", 11)):
        arms = out["cases"][name + G.ALL_CONNECTED]["arms"]
        assert arms["twin"]["cav_mean_s"] == pytest.approx(172.0 + seed - 3.0)
        for arm in ("no_guidance", "sumo_rerouting"):
            assert arms[arm]["from_case"] == name and arms[arm]["cav_mean_s"] == pytest.approx(base_s[arm] + seed)
    row = next(t for t in out["targets"] if "every vehicle connected" in t["target"])
    assert "seeds [7, 8, 11]" in row["target"] and row["verdict"] == "reported"
    rel = [(169.0 + s) / (170.0 + s) - 1.0 for s in (7, 8, 11)]
    assert f"{rel[0]:+.1%}" in row["measured"] and f"(mean {sum(rel) / 3:+.1%})" in row["measured"]


def test_a_workdir_that_cannot_be_made_is_said_so_before_any_run(tmp_path, capsys):
    """--workdir: made when missing; a path under a file is refused with its reason (exit 2), before the world
    is built."""
    import argparse

    from mobility_twin_bench.guidance import run

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    args = argparse.Namespace(quick=True, seed=7, second_seed=8, more_seeds=[], all_connected=False,
                              sweep_seeds=[], jobs=1, workdir=blocker / "runs", out=tmp_path)
    assert run(args) == 2
    assert "--workdir" in capsys.readouterr().err and not (tmp_path / "guidance.json").exists()


def test_a_missing_workdir_is_made(tmp_path, monkeypatch):
    """--workdir: a folder that is not there yet is made (with its parents) and the runs' folder put in it."""
    import argparse

    import mobility_twin_bench.guidance as G

    class Stop(Exception):
        pass

    def stop(log=print):  # (the world itself is not built: only where the runs go is asked here)
        raise Stop

    monkeypatch.setattr(G, "world_files", stop)
    args = argparse.Namespace(quick=True, seed=7, second_seed=8, more_seeds=[], all_connected=False,
                              sweep_seeds=[], jobs=1, workdir=tmp_path / "not" / "yet", out=tmp_path)
    with pytest.raises(Stop):
        G.run(args)
    assert [p.name.startswith("mtwin_bench_guidance_") for p in (tmp_path / "not" / "yet").iterdir()] == [True]


def _stand_in_sumo(monkeypatch, G, cav_s) -> None:
    """The bench's SUMO runs, world and oracle stood in for: ten vehicles, the first three CAVs, each taking
    ``cav_s(case, arm)`` seconds; the oracle 150 s and 10% from the twin."""
    import types

    def work(job):
        case, arm, _, _ = job
        depart = {f"v{i}": 10.0 * i for i in range(10)}
        run = {"arm": arm, "case": case.name, "depart": depart, "end_s": 5000.0, "wall_s": 1.0,
               "arrive": {v: d + cav_s(case, arm) for v, d in depart.items()}, "cavs": ["v0", "v1", "v2"],
               "counts": {}}
        if arm == "twin":
            run["twin"] = {"decision_ms_per_cycle": {"median": 1.0, "p95": 2.0, "max": 3.0}}
        return run

    monkeypatch.setattr(G, "world_files", lambda log=print: types.SimpleNamespace(incident_edge="I5I6"))
    monkeypatch.setattr(G, "_work", work)
    monkeypatch.setattr(G, "oracle", lambda case, twin, files: {
        "cavs": 3, "oracle_mean_s": 150.0, "oracle_p90_s": 160.0, "gap_to_oracle": 0.1, "gap_simulated_to_oracle": 0.1})
