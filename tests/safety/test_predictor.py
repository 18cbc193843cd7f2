"""The collision-warning library on constructed cases: rear-end, crossing, near misses, bad input, hysteresis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobility_twin.safety import (
    CROSSING,
    HEAD_ON,
    REAR_END,
    ConflictPredictor,
    Motion,
    PredictorConfig,
    RawDetections,
    WarningConfig,
    WarningTracker,
)


def motion(rows, sigma_p=0.3, sigma_v=0.3, t=0.0, last_update=None, length=4.5, width=1.8, P=True) -> Motion:
    x = np.asarray(rows, float).reshape(-1, 4)
    n = len(x)
    cov = np.tile(np.diag([sigma_p ** 2, sigma_p ** 2, sigma_v ** 2, sigma_v ** 2]), (n, 1, 1)) if P else None
    lu = np.full(n, t) if last_update is None else np.asarray(last_update, float)
    return Motion(t, np.arange(1, n + 1, dtype=np.int64), x, cov, np.full(n, length), np.full(n, width), None, lu)


def one(conflicts):
    assert len(conflicts) == 1, conflicts
    return conflicts[0]


def test_rear_end_into_a_stopped_car_has_the_closing_time_and_the_follower_yields():
    # follower at 10 m/s, a stopped car 20 m ahead (centres): bumpers 15.5 m apart -> about 1.5 s
    c = one(ConflictPredictor().predict(motion([[0, 0, 10, 0], [20, 0, 0, 0]])))
    assert c.kind == REAR_END and c.probability > 0.8
    assert 1.3 <= c.ttc_s <= 1.8  # (the draws that hit are those that do not brake: a little later)
    assert c.yield_a and not c.yield_b  # the follower (id 1) brakes, not the car ahead
    assert math.isnan(c.pet_s)


def test_crossing_at_a_junction_is_found_and_the_later_arrival_yields():
    # a from the west 25 m out, b from the south 28 m out, both at 10 m/s: they meet about 2.2 s from now
    c = one(ConflictPredictor().predict(motion([[-25, 0, 10, 0], [0, -28, 0, 10]])))
    assert c.kind == CROSSING and c.probability > 0.5
    assert 1.8 <= c.ttc_s <= 2.8
    assert c.yield_b and not c.yield_a
    assert c.pet_s == pytest.approx(0.0, abs=0.5)
    assert abs(c.point[0]) < 4 and abs(c.point[1]) < 4


def test_head_on_both_yield():
    c = one(ConflictPredictor().predict(motion([[-30, 0, 8, 0], [30, 0, -8, 0]])))
    assert c.kind == HEAD_ON and c.yield_a and c.yield_b


@pytest.mark.parametrize("rows", [
    [[-25, 0, 10, 0], [0, -60, 0, 10]],  # b crosses 3.5 s after a has passed: no conflict
    [[0, 0, 10, 0], [6, 3.3, 10, 0]],  # neighbouring lanes, same speed
    [[0, 0, 10, 0], [20, 0, 10, 0]],  # following at the same speed
    [[0, 0, 0, 0], [6.0, 0, 0, 0]],  # a queue at a light: nobody moves
    [[0, 0, -10, 0], [20, 0, 10, 0]],  # driving apart
])
def test_near_misses_and_safe_situations_are_not_conflicts(rows):
    conflicts = ConflictPredictor().predict(motion(rows))
    assert all(c.probability < 0.5 for c in conflicts), conflicts


def test_uncertainty_lowers_the_probability_of_a_marginal_conflict():
    # a passes the crossing point ~0.6 s before b arrives: exact motion says (barely) no, uncertain motion maybe
    rows = [[-20, 0, 10, 0], [0, -27, 0, 10]]
    sure = ConflictPredictor(PredictorConfig(accel_sigma=0.0, lateral_sigma=0.0)).predict(motion(rows, 0.01, 0.01))
    unsure = ConflictPredictor().predict(motion(rows, 1.5, 1.5))
    p_sure = max([c.probability for c in sure], default=0.0)
    p_unsure = max([c.probability for c in unsure], default=0.0)
    assert p_sure < 0.05
    assert 0.05 < p_unsure < 0.9


def test_bad_input_is_skipped_and_counted_never_raised():
    rows = [[0, 0, 10, 0], [20, 0, 0, 0], [np.nan, 0, 1, 0], [5, 5, np.inf, 0], [40, 0, 200, 0], [60, 0, 1, 0]]
    m = motion(rows, last_update=[0, 0, 0, 0, 0, -5.0])  # the last one is stale
    P = m.P.copy()
    P[1, 0, 0] = np.nan  # the stopped car's covariance is broken
    m = Motion(m.t, m.ids, m.x, P, m.length, m.width, None, m.last_update)
    pred = ConflictPredictor()
    assert pred.predict(m) == []  # the only real conflict involves the broken row
    assert pred.counts["not_finite"] == 2 and pred.counts["stale"] == 1 and pred.counts["implausible_speed"] == 1
    assert pred.counts["bad_covariance"] == 1
    # repeated ids: the second is skipped
    m2 = motion([[0, 0, 10, 0], [20, 0, 0, 0]])
    m2 = Motion(0.0, np.array([3, 3]), m2.x, m2.P, m2.length, m2.width, None, m2.last_update)
    assert ConflictPredictor().predict(m2) == []
    # nothing, one road user, empty arrays
    assert ConflictPredictor().predict(motion(np.zeros((0, 4)))) == []
    assert ConflictPredictor().predict(motion([[0, 0, 1, 0]])) == []


def test_two_tracks_of_one_vehicle_are_not_a_conflict():
    pred = ConflictPredictor()
    assert pred.predict(motion([[0, 0, 10, 0], [0.4, 0.2, 10, 0]])) == []
    assert pred.counts["overlapping_pair"] == 1


def test_candidate_pairs_stay_few_in_a_large_scene():
    rng = np.random.default_rng(1)
    n = 400  # vehicles on a grid of lanes, all moving along their lane
    lane = rng.integers(0, 20, n)
    along = rng.uniform(-500, 500, n)
    horizontal = lane % 2 == 0
    rows = np.zeros((n, 4))
    rows[:, 0] = np.where(horizontal, along, (lane - 10) * 50.0)
    rows[:, 1] = np.where(horizontal, (lane - 10) * 50.0, along)
    speed = rng.uniform(5, 12, n) * rng.choice([-1, 1], n)
    rows[:, 2] = np.where(horizontal, speed, 0)
    rows[:, 3] = np.where(horizontal, 0, speed)
    pred = ConflictPredictor()
    pred.predict(motion(rows))
    assert pred.counts["pairs_sampled"] < 0.02 * n * (n - 1) / 2


def test_the_mean_motion_alone_gives_probability_zero_or_one():
    c = one(ConflictPredictor(PredictorConfig(samples=0)).predict(motion([[0, 0, 10, 0], [20, 0, 0, 0]], P=False)))
    assert c.probability == 1.0 and 1.3 <= c.ttc_s <= 1.7


def _conflict(p, ttc, a=1, b=2):
    from mobility_twin.safety import Conflict

    return Conflict(a, b, p, ttc, math.nan, 0.0, REAR_END, True, False, (0.0, 0.0))


def test_warnings_start_after_confirmation_hold_through_blips_and_do_not_flap():
    w = WarningTracker(WarningConfig(p_on=0.5, ttc_on_s=3.0, p_off=0.25, ttc_off_s=4.0, confirm=2, hold_s=1.0,
                                     refractory_s=2.0))
    kinds, started_at = [], None
    # a noisy conflict: above the start bar, one blip below the hold bar, back, then gone
    series = [0.6, 0.7, 0.8, 0.1, 0.6, 0.3, 0.3] + [0.0] * 15
    for k, p in enumerate(series):
        evs = w.update(k * 0.1, [_conflict(p, 2.0)] if p > 0 else [])
        kinds += [e.kind for e in evs]
        if any(e.kind == "start" for e in evs):
            started_at = k
    assert kinds.count("start") == 1 and kinds.count("end") == 1
    assert started_at == 1  # confirmed on the second cycle
    # a single cycle above the bars never warns
    w2 = WarningTracker()
    assert not [e for e in w2.update(0.0, [_conflict(0.9, 1.0)]) if e.kind == "start"]
    assert not [e for e in w2.update(0.1, []) if e.kind == "start"]
    # TTC beyond the start bar: no warning however likely
    w3 = WarningTracker()
    assert not [e for k in range(5) for e in w3.update(k * 0.1, [_conflict(0.99, 3.5)]) if e.kind == "start"]


def test_warnings_of_road_users_that_are_gone_end():
    w = WarningTracker()
    w.update(0.0, [_conflict(0.9, 1.0)])
    w.update(0.1, [_conflict(0.9, 1.0)])
    assert w.active
    evs = w.forget([2])
    assert [e.kind for e in evs] == ["end"] and not w.active


def test_raw_detections_get_velocities_from_frame_differencing():
    from mobility_twin.perception.detections import Detections

    def frame(t, xs):
        n = len(xs)
        return Detections("rsu_0", 0, t, (0.0, 0.0), 80.0, np.column_stack([xs, np.zeros(n)]), np.tile(np.eye(2), (n, 1, 1)),
                          np.zeros(n), np.tile([4.5, 1.8, 1.5], (n, 1)), np.full((n, 2), np.nan), np.ones(n),
                          np.full(n, 50), np.ones(n, dtype=np.int64), np.array([""] * n, dtype=object))

    raw = RawDetections()
    raw.add(frame(0.0, [0.0, 30.0]))
    assert len(raw.motion(0.0).ids) == 0  # no velocity yet
    raw.add(frame(0.1, [1.0, 30.0]))
    m = raw.motion(0.1)
    assert len(m.ids) == 2 and m.P is None
    assert m.x[np.argmin(m.x[:, 0]), 2] == pytest.approx(10.0)
    c = one(ConflictPredictor(PredictorConfig(samples=0)).predict(m))
    assert 2.2 <= c.ttc_s <= 2.9
    assert len(raw.motion(5.0).ids) == 0  # frames too old are not used


# ---------------------------------------------------------------------------------------------- lanes
def two_way_road():
    """A straight road along x, two lanes eastbound (y -1.6 and -4.8) and two westbound (y 1.6 and 4.8)."""
    from mobility_twin_core.roads import RoadGraph

    xs = np.array([-200.0, 200.0])
    east = tuple(np.column_stack([xs, np.full(2, y)]) for y in (-1.6, -4.8))
    west = tuple(np.column_stack([xs[::-1], np.full(2, y)]) for y in (1.6, 4.8))
    return RoadGraph(("east", "west"), np.full(2, 400.0), np.full(2, 14.0), np.array([2, 2]), np.array([0, 0, 0]),
                     np.zeros(0, np.int64), (east, west))


def with_lanes(m: Motion, heading=None) -> Motion:
    from dataclasses import replace

    from mobility_twin.safety import LaneHeadings

    lanes = LaneHeadings(two_way_road())
    h = np.arctan2(m.x[:, 3], m.x[:, 2]) if heading is None else np.asarray(heading, float)
    return replace(m, lane_heading=lanes.headings(m.x[:, 0], m.x[:, 1], h))


def test_lanes_keep_neighbours_in_the_next_lane_apart_where_their_headings_would_drift_together():
    # two cars side by side in the eastbound lanes at 12 m/s; the outer one's velocity points 3 degrees
    # towards the inner lane (a heading error): on its own heading it drifts 2.5 m across in 4 s
    a = math.radians(3.0)
    rows = [[0, -1.6, 12, 0], [2, -4.8, 12 * math.cos(a), 12 * math.sin(a)]]
    cfg = PredictorConfig(seed=1)
    assert any(c.probability >= 0.5 for c in ConflictPredictor(cfg).predict(motion(rows)))
    m = with_lanes(motion(rows))
    assert np.allclose(m.lane_heading, 0.0)
    assert not [c for c in ConflictPredictor(cfg).predict(m) if c.probability >= 0.25]


def test_lanes_keep_oncoming_cars_in_their_own_lanes_and_still_see_a_rear_end_in_one_lane():
    a = math.radians(4.0)  # the oncoming car's heading error points into the eastbound lane
    rows = [[-25, -1.6, 10, 0], [25, 1.6, -10 * math.cos(a), -10 * math.sin(a)]]
    assert any(c.kind == HEAD_ON for c in ConflictPredictor(PredictorConfig(seed=2)).predict(motion(rows)))
    m = with_lanes(motion(rows))
    assert np.allclose(m.lane_heading, [0.0, math.pi])
    assert not [c for c in ConflictPredictor(PredictorConfig(seed=2)).predict(m) if c.probability >= 0.25]
    # a follower closing on a stopped car in the same lane is still a conflict, with the lanes known
    m = with_lanes(motion([[0, -4.8, 10, 0], [20, -4.8, 0, 0]]), heading=[0.0, 0.0])
    c = one(ConflictPredictor().predict(m))
    assert c.kind == REAR_END and c.probability > 0.8 and 1.3 <= c.ttc_s <= 1.8


def test_a_road_user_off_every_lane_keeps_its_own_heading():
    # in the middle of the westbound lanes' gap? No: 10 m off the road, and one against its lane's direction
    m = with_lanes(motion([[0, -15, 10, 0], [0, -1.6, -10, 0]]))
    assert np.isnan(m.lane_heading).all()


def junction_with_a_light():
    """An eastbound approach whose stop line is at x = -6 (lane at y = -1.6, light "tl" link 0), and a
    northbound road through the junction at x = 1.6 (its own light is not on this stretch)."""
    from mobility_twin_core.roads import RoadGraph

    approach = (np.array([[-200.0, -1.6], [-6.0, -1.6]]),)
    north = (np.array([[1.6, -200.0], [1.6, 200.0]]),)
    return RoadGraph(("approach", "north"), np.array([194.0, 400.0]), np.full(2, 14.0), np.array([1, 1]),
                     np.array([0, 0, 0]), np.zeros(0, np.int64), (approach, north), "", ((), ()),
                     (((("tl", 0),),), ((),)))


def signals(state: str, switch_s: float = 20.0):
    from mobility_twin_sim.backend import SignalStates

    return SignalStates(0.0, ("tl",), np.zeros(1), np.zeros(1), (state,), np.zeros(1, np.int64), np.array([switch_s]))


def test_a_car_a_red_light_holds_stops_at_its_line_and_crosses_nobody():
    from dataclasses import replace

    from mobility_twin.safety import LaneHeadings

    lanes = LaneHeadings(junction_with_a_light())
    # a car 20 m before the line at 8 m/s, a crossing car that reaches the junction about when it would
    rows = [[-26.0, -1.6, 8.0, 0.0], [1.6, -30.0, 0.0, 10.0]]
    m = motion(rows)

    def conflicts(sig):
        lane, stop = lanes.locate(m.x[:, 0], m.x[:, 1], np.array([0.0, math.pi / 2]), np.array([8.0, 10.0]),
                                  m.length, sig)
        held = replace(m, lane_heading=lane, stop_m=stop)
        return stop, [c for c in ConflictPredictor(PredictorConfig(seed=3)).predict(held) if c.probability >= 0.5]

    stop, found = conflicts(signals("Gr"))  # green for the car: nothing held ...
    assert np.isinf(stop).all() and any(c.kind == CROSSING for c in found)
    stop, found = conflicts(None)  # ... nor without the lights' states
    assert np.isinf(stop).all() and found
    stop, found = conflicts(signals("rG"))  # red for the car: it stops at the line (centre half a length short)
    assert stop[0] == pytest.approx(20.0 - 2.25, abs=1.0) and np.isinf(stop[1]) and not found
    stop, _ = conflicts(signals("rG", switch_s=0.5))  # ... unless it turns green in a moment
    assert np.isinf(stop).all()
    # a car too fast to stop before the line is not held (it runs the light)
    fast = replace(m, x=np.array([[-16.0, -1.6, 16.0, 0.0], [1.6, -30.0, 0.0, 10.0]]))
    _, stop = lanes.locate(fast.x[:, 0], fast.x[:, 1], np.array([0.0, math.pi / 2]), np.array([16.0, 10.0]),
                           fast.length, signals("rG"))
    assert np.isinf(stop).all()


def test_a_bus_passing_a_car_in_the_next_lane_is_no_conflict_and_a_bus_closing_on_one_in_its_lane_is():
    """A long body gets as many discs as keep it within 0.25 m of its sides (four discs for a 12 m bus
    would reach a metre beyond them, into the next lane)."""
    from dataclasses import replace

    def bus_and_car(car_y):  # the bus in the outer eastbound lane (y = -4.8), the car at car_y
        m = motion([[0, -4.8, 10, 0], [16, car_y, 6, 0]], sigma_p=0.1, sigma_v=0.1)
        return with_lanes(replace(m, length=np.array([12.0, 4.5]), width=np.array([2.5, 1.8])), heading=[0.0, 0.0])

    cfg = PredictorConfig(seed=3)
    # overtaking: below the warning rule's probability (0.5); four discs gave 0.66
    assert not [c for c in ConflictPredictor(cfg).predict(bus_and_car(-1.6)) if c.probability >= 0.5]
    c = one(ConflictPredictor(cfg).predict(bus_and_car(-4.8)))  # the same car ahead of it in its lane
    assert c.kind == REAR_END and c.probability > 0.8 and c.yield_a
