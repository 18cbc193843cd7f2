"""The offline pipeline (``run_offline``, the sweep's): the nodes' library code on the replay, in one process."""

import numpy as np
import pytest

from mobility_twin.evaluation.offline import OfflineOptions, TickFusion, local_twins_for, run_offline


@pytest.fixture(scope="module")
def world():
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    return build_world(load_scenario("default"), log=lambda *a, **k: None)


def test_tick_fusion_names_the_sites_that_took_a_frame(world):
    """The local twin node publishes right after each fused frame (event_publish): the offline pipeline
    reports its sites to the global twin on those ticks, so it needs to know which twins took one."""
    from mobility_twin_sim.replay import Replay

    replay = Replay(world)
    fusion = TickFusion(world, local_twins_for(world))
    site_of_rsu = {r.rsu_id: r.site_id for r in world.rsus}
    seen = set()
    for _ in range(40):
        tick = replay.step()
        made = fusion.feed(tick)
        rsu_sites = {site_of_rsu[sid] for kind, sid, _ in made if kind == "rsu"}
        assert rsu_sites <= fusion.fused
        if not made:
            assert fusion.fused == set()
        seen |= fusion.fused
    assert seen == {s.site_id for s in world.sites}


def test_the_global_twin_follows_each_fused_frame_and_matches_the_rsus_alone(world):
    """With event snapshots (the shipped config) the global twin holds each site's newest frame, so within
    every RSU's disc it is within 0.01 MOTA of that RSU alone, or better."""
    result = run_offline(world, OfflineOptions(duration_s=12.0))
    m = result.metrics
    assert m["global"]["mota"] >= 0.95
    for rid in (r.rsu_id for r in world.rsus):
        alone, fused = m[f"rsu/{rid}"]["mota"], m[f"global@{rid}"]["mota"]
        if np.isfinite(alone) and np.isfinite(fused):
            assert fused >= alone - 0.01, (rid, alone, fused)
