"""A hardware-in-the-loop replay that slips its schedule reports velocities in stamp time."""

from __future__ import annotations

import numpy as np
import pytest

from mobility_twin_sim.replay import Pace, Replay, ReplayOptions, time_dilated
from mobility_twin_sim.scenario import load_scenario
from mobility_twin_sim.world import build_world


def test_pace_is_one_on_schedule_and_the_share_of_sim_time_when_the_stamps_slip():
    pace = Pace(window_s=5.0)
    assert all(pace.update(100.0 + 0.1 * k, 0.1 * k) == 1.0 for k in range(60))
    pace = Pace(window_s=5.0)
    values = [pace.update(100.0 + 0.15 * k, 0.1 * k) for k in range(200)]  # 0.1 sim s per 0.15 s of stamps
    assert values[-1] == pytest.approx(2 / 3, abs=1e-6)
    pace.reset()
    assert pace.update(500.0, 30.0) == 1.0


def test_a_slipping_replay_scales_every_reported_velocity_and_nothing_else():
    replay = Replay(build_world(load_scenario("mixed_v2x"), log=lambda *a, **k: None), ReplayOptions(lidar=False))
    ticks = [replay.step() for _ in range(40)]
    assert any(t.v2x for t in ticks) and any(t.odometry for t in ticks) and any(t.ground_truth for t in ticks)
    for tick in ticks:
        assert time_dilated(tick, 1.0) is tick
        slow = time_dilated(tick, 0.5)
        if tick.ground_truth is not None:
            a, b = tick.ground_truth.state, slow.ground_truth.state
            assert np.allclose(b.speed, 0.5 * a.speed) and np.array_equal(b.x, a.x) and np.array_equal(b.ids, a.ids)
        for r0, r1 in zip(tick.v2x, slow.v2x, strict=True):
            assert np.allclose(r1.vx, 0.5 * r0.vx) and np.allclose(r1.vy, 0.5 * r0.vy) and np.array_equal(r1.x, r0.x)
        for o0, o1 in zip(tick.odometry, slow.odometry, strict=True):
            assert o1.speed == pytest.approx(0.5 * o0.speed) and o1.x == o0.x
        assert slow.frames is tick.frames  # the clouds are what the sensors saw: unchanged
