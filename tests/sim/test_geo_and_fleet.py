"""Projection to the local plane, scaling into a square, and interpolation of trajectories."""

import math

import numpy as np
import pytest

from mobility_twin_sim.fleet import Fleet
from mobility_twin_sim.geo import LocalENU, SquareScaler, geodetic_to_ecef
from mobility_twin_sim.tdrive import TaxiTrack


def test_projection_round_trip_is_sub_centimetre_across_beijing():
    rng = np.random.default_rng(0)
    proj = LocalENU(116.4468, 39.9135)
    lon, lat = rng.uniform(115.7, 117.4, 5000), rng.uniform(39.4, 41.1, 5000)
    x, y = proj.forward(lon, lat)
    lon2, lat2 = proj.inverse(x, y)
    back_x, back_y = proj.forward(lon2, lat2)
    assert np.max(np.hypot(back_x - x, back_y - y)) < 1e-3
    # 1e-9 degree is about 0.1 mm
    assert np.max(np.abs(lon2 - lon)) < 1e-9 and np.max(np.abs(lat2 - lat)) < 1e-9


def test_projection_axes_are_east_and_north_in_metres():
    proj = LocalENU(116.4, 39.9)
    x, y = proj.forward(116.4, 39.9)
    assert abs(x) < 1e-6 and abs(y) < 1e-6
    x, y = proj.forward(116.41, 39.9)
    assert x > 0 and abs(y) < 1.0
    x, y = proj.forward(116.4, 39.91)
    assert y > 0 and abs(x) < 1e-6
    # short distances on the plane equal straight-line (chord) distances on the ellipsoid
    a, b = geodetic_to_ecef(116.4, 39.9), geodetic_to_ecef(116.403, 39.902)
    x, y = proj.forward(116.403, 39.902)
    assert math.hypot(x, y) == pytest.approx(np.linalg.norm(a - b), rel=1e-6)


def test_bad_origin_is_rejected():
    with pytest.raises(ValueError, match="not a longitude/latitude"):
        LocalENU(200.0, 39.9)


def test_square_scaler_fits_the_larger_extent_and_centres():
    s = SquareScaler(0.0, 40_000.0, 0.0, 20_000.0, side=5_000.0)
    assert s.factor == pytest.approx(0.125)
    x, y = s.apply(np.array([0.0, 40_000.0]), np.array([0.0, 20_000.0]))
    assert x.tolist() == pytest.approx([0.0, 5000.0])
    assert y.tolist() == pytest.approx([1250.0, 3750.0])


def _track(taxi_id, t, x, y):
    # tracks carry lon/lat; build a fleet directly from plane coordinates instead
    return taxi_id, np.asarray(t, float), np.asarray(x, float), np.asarray(y, float)


def _fleet(tracks, max_gap_s=60.0):
    ids, ts, xs, ys, counts = [], [], [], [], []
    for taxi_id, t, x, y in tracks:
        ids.append(taxi_id)
        ts.append(t)
        xs.append(x)
        ys.append(y)
        counts.append(len(t))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return Fleet(np.array(ids), offsets, np.concatenate(ts), np.concatenate(xs), np.concatenate(ys),
                 max_gap_s=max_gap_s)


def test_interpolation_between_fixes_gives_position_heading_and_speed():
    fleet = _fleet([_track(1, [0, 10, 20], [0, 100, 100], [0, 0, 50])])
    s = fleet.state_at(5.0)
    assert s.ids.tolist() == [1]
    assert (s.x[0], s.y[0]) == pytest.approx((50.0, 0.0))
    assert s.heading[0] == pytest.approx(0.0) and s.speed[0] == pytest.approx(10.0)
    s = fleet.state_at(15.0)
    assert (s.x[0], s.y[0]) == pytest.approx((100.0, 25.0))
    assert s.heading[0] == pytest.approx(math.pi / 2) and s.speed[0] == pytest.approx(5.0)
    vx, vy = s.velocity()
    assert (vx[0], vy[0]) == pytest.approx((0.0, 5.0), abs=1e-9)


def test_interpolation_never_bridges_a_gap_longer_than_the_limit():
    fleet = _fleet([_track(1, [0, 10, 200, 210], [0, 10, 500, 510], [0, 0, 0, 0])], max_gap_s=60.0)
    assert len(fleet.state_at(5.0)) == 1
    assert len(fleet.state_at(10.0)) == 1  # on a fix
    assert len(fleet.state_at(100.0)) == 0  # inside the 190 s gap: the taxi has left the scene
    assert len(fleet.state_at(205.0)) == 1  # back again
    assert len(fleet.state_at(-1.0)) == 0 and len(fleet.state_at(211.0)) == 0


def test_stationary_taxi_keeps_its_last_heading():
    fleet = _fleet([_track(1, [0, 10, 20, 30], [0, 0, 0, 0], [0, 100, 100, 100])])
    s = fleet.state_at(25.0)
    assert s.speed[0] == pytest.approx(0.0)
    assert s.heading[0] == pytest.approx(math.pi / 2)


def test_many_taxis_are_sampled_independently():
    fleet = _fleet([_track(1, [0, 10], [0, 10], [0, 0]), _track(2, [5, 15], [0, 0], [0, 20]),
                    _track(3, [100, 110], [0, 0], [0, 0])])
    s = fleet.state_at(7.0)
    assert s.ids.tolist() == [1, 2]
    assert s.x.tolist() == pytest.approx([7.0, 0.0]) and s.y.tolist() == pytest.approx([0.0, 4.0])
    states = list(fleet.slots(5.0, 0.0, 15.0))
    assert [len(st) for st in states] == [1, 2, 2, 1]


def test_fleet_from_tracks_projects_lon_lat():
    proj = LocalENU(116.4, 39.9)
    track = TaxiTrack(9, np.array([0.0, 10.0]), np.array([116.4, 116.401]), np.array([39.9, 39.9]), "9.txt")
    fleet = Fleet.from_tracks([track], proj)
    s = fleet.state_at(10.0)
    assert s.x[0] == pytest.approx(proj.forward(116.401, 39.9)[0])
    assert s.speed[0] == pytest.approx(s.x[0] / 10.0, rel=1e-6)


def test_unsorted_fixes_are_rejected():
    with pytest.raises(ValueError, match="sorted by time"):
        _fleet([_track(1, [10, 0], [0, 1], [0, 0])])


def test_fix_lookup_finds_the_last_fix_by_a_time_and_the_next_one_after_it():
    fleet = _fleet([_track(7, [0, 10, 30], [0, 1, 2], [0, 0, 0]), _track(3, [20], [5], [5])])
    rows = fleet.rows(np.array([3, 7]))
    assert rows.tolist() == [1, 0]
    assert fleet.last_fix_index(rows, 10.0).tolist() == [-1, 1]  # taxi 3 has no fix yet; 7 is on its fix
    assert fleet.last_fix_index(rows, 25.0).tolist() == [3, 1]
    assert fleet.next_fix_time(np.array([7, 3]), 10.0).tolist() == [30.0, 20.0]  # strictly after
    assert fleet.next_fix_time(np.array([7, 3]), 30.0).tolist() == [math.inf, math.inf]
    with pytest.raises(ValueError, match=r"not in the fleet: \[99\]"):
        fleet.rows(np.array([7, 99]))
