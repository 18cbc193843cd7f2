"""Fusion that holds on mixed traffic: LiDAR and V2X of one vehicle are one track, evidence decides what
exists, and the global twin fuses correlated local tracks without counting them twice."""

from __future__ import annotations

import numpy as np
import pytest

from mobility_twin.perception.reports import v2x_detections
from mobility_twin.tracking import MultiSourceTracker, TrackerConfig
from mobility_twin.twin.global_twin import covariance_intersection
from tests.twin.test_tracker import frame


def _v2x(t, x, y, vx, sigma=1.5, vid="1059", rng=None):
    rng = rng or np.random.default_rng(0)
    nx, ny = rng.normal(0, sigma, 2)
    return v2x_detections("edge_0", (0.0, 0.0), t, [int(vid)], [x + nx], [y + ny], [0.0], [vx], [0.0], sigma,
                          np.array([[4.6, 1.8, 1.5]]), [1])


def test_one_vehicle_seen_by_lidar_and_reporting_itself_is_one_track():
    tracker = MultiSourceTracker(TrackerConfig())
    rng = np.random.default_rng(4)
    for k in range(60):  # 6 s at 10 m/s; LiDAR and GNSS reports (1.5 m noise) interleaved, 50 ms apart
        t = 0.1 * k
        tracker.update(frame("rsu_0", t, [(10.0 * t, 3.0)], sensor=(20.0, 0.0), sensor_range=80))
        tracker.update(_v2x(t + 0.05, 10.0 * (t + 0.05), 3.0, 10.0, rng=rng))
    tracks = tracker.confirmed_at(6.0)
    assert len(tracks) == 1, f"{len(tracks)} tracks for one vehicle"
    assert tracks.vehicle_id[0] == "1059" and tracks.sources[0] >= {"rsu_0", "edge_0/v2x"}
    assert np.hypot(tracks.x[0, 0] - 60.0, tracks.x[0, 1] - 3.0) < 0.5  # LiDAR's precision, not GNSS's


def test_a_report_next_to_two_tracked_vehicles_binds_to_neither_when_it_cannot_tell():
    tracker = MultiSourceTracker(TrackerConfig())
    for k in range(10):  # two vehicles 2.5 m apart
        tracker.update(frame("rsu_0", 0.1 * k, [(10.0, 0.0), (12.5, 0.0)], sensor=(0.0, 0.0)))
    tracker.update(_v2x(1.0, 11.25, 0.0, 0.0, sigma=1.5, rng=np.random.default_rng(99)))
    assert not any(tracker.tracks.vehicle_id[tracker.tracks.status == 1][:2])


def test_a_stationary_vehicle_with_weak_detections_is_tracked():
    tracker = MultiSourceTracker(TrackerConfig())
    for k in range(20):  # 55 m away, confidence 0.12 in every frame (too weak for a one-frame birth gate)
        f = frame("rsu_0", 0.1 * k, [(55.0, 0.0)], sensor=(0.0, 0.0))
        tracker.update(f.__class__(**{**f.__dict__, "confidence": np.array([0.12])}))
    tracks = tracker.confirmed_at(2.0)
    assert len(tracks) == 1 and tracks.existence[0] > 0.85


def test_clutter_is_not_confirmed():
    tracker = MultiSourceTracker(TrackerConfig())
    rng = np.random.default_rng(7)
    for k in range(50):  # a spurious detection at a new place in every frame, confident ones too
        f = frame("rsu_0", 0.1 * k, [tuple(rng.uniform(-40, 40, 2))], sensor=(0.0, 0.0))
        tracker.update(f.__class__(**{**f.__dict__, "confidence": np.array([0.9])}))
    assert len(tracker.confirmed_at(5.0)) == 0


def test_correlated_estimates_are_fused_without_counting_them_twice():
    x = np.array([10.0, 5.0, 1.0, 0.0])
    P = np.diag([1.0, 1.0, 0.5, 0.5])
    fx, fP = covariance_intersection(x, P, x.copy(), P.copy())  # the same estimate reached the cloud twice
    assert np.allclose(fx, x) and np.allclose(fP, P)  # not P / 2: nothing is learnt from a copy
    lidar = (np.array([10.0, 5.0, 1.0, 0.0]), np.diag([0.04, 0.04, 0.3, 0.3]))
    gnss = (np.array([11.5, 4.0, 1.1, 0.0]), np.diag([2.25, 2.25, 0.3, 0.3]))
    fx, fP = covariance_intersection(*lidar, *gnss)
    assert np.hypot(fx[0] - 10.0, fx[1] - 5.0) < 0.3  # the precise site dominates
    assert np.trace(fP) <= np.trace(gnss[1]) and np.all(np.linalg.eigvalsh(fP) > 0)


@pytest.mark.parametrize("offset", [0.0, 0.8])
def test_a_track_only_gnss_saw_merges_into_the_lidar_track_of_the_same_vehicle(offset):
    tracker = MultiSourceTracker(TrackerConfig())
    rng = np.random.default_rng(1)
    for k in range(10):  # first only GNSS reports (LiDAR occluded) ...
        tracker.update(_v2x(0.1 * k, 10.0 * 0.1 * k, 3.0, 10.0, rng=rng))
    for k in range(10, 30):  # ... then the LiDAR sees it too
        t = 0.1 * k
        tracker.update(frame("rsu_0", t, [(10.0 * t + offset, 3.0)], sensor=(20.0, 0.0), sensor_range=80))
        tracker.update(_v2x(t + 0.05, 10.0 * (t + 0.05), 3.0, 10.0, rng=rng))
    assert len(tracker.confirmed_at(3.0)) == 1


def test_a_covariance_claiming_impossible_certainty_is_refused_and_a_diverged_track_dropped():
    from dataclasses import replace

    from mobility_twin.twin.validation import InputValidator

    f = frame("rsu_00", 1.0, [(10.0, 5.0), (20.0, 5.0)])
    f.cov[0] = np.diag([1e-300, 1e-300])  # positive definite, but would overflow the Kalman gain
    v = InputValidator()
    kept = v.detections(f, 1.0)
    assert len(kept) == 1 and kept.xy[0, 0] == 20.0 and v.rejected["bad_covariance"] == 1

    # past validation (a tracker fed directly), a track that stops being finite is dropped and counted
    tracker = MultiSourceTracker(TrackerConfig())
    for k in range(5):
        tracker.update(frame("rsu_00", k * 0.1, [(10.0, 5.0)]))
    tracker.tracks.P[:] = np.inf
    tracker.update(replace(frame("rsu_00", 0.5, [(10.0, 5.0)])))
    assert tracker.stats.diverged == 1
    assert np.isfinite(tracker.tracks.x).all() and np.isfinite(tracker.tracks.P).all()


def test_a_vehicle_only_one_of_three_covering_sensors_sees_is_confirmed_and_clutter_is_not():
    """Three RSUs cover a place; a parked vehicle there is hidden from two of them (behind what they do not
    detect) and seen by the third in every frame: it is confirmed. A one-frame blob from one sensor is not."""
    tracker = MultiSourceTracker(TrackerConfig())
    parked = (20.0, 5.0)
    for k in range(20):
        t = k * 0.1
        tracker.update(frame("rsu_a", t, [parked], sensor=(0.0, 0.0), sensor_range=60.0))
        tracker.update(frame("rsu_b", t + 0.01, [], sensor=(40.0, 0.0), sensor_range=60.0))
        tracker.update(frame("rsu_c", t + 0.02, [(-30.0, -20.0)] if k == 3 else [], sensor=(20.0, 40.0),
                             sensor_range=60.0))
    confirmed = tracker.confirmed_at(2.0)
    assert len(confirmed) == 1 and np.hypot(*(confirmed.x[0, :2] - parked)) < 0.5


def test_a_track_hidden_behind_a_detected_vehicle_counts_no_miss():
    from mobility_twin.tracking.management import shadowed

    f = frame("rsu_a", 0.0, [(10.0, 0.0)], sensor=(0.0, 0.0), sensor_range=60.0)
    assert shadowed(np.array([[20.0, 0.5], [20.0, 6.0], [5.0, 0.0]]), f).tolist() == [True, False, False]


def test_a_local_track_with_an_indefinite_covariance_is_refused_and_the_others_kept():
    from mobility_twin.tracking import TrackSet, object_array
    from mobility_twin.twin.validation import InputValidator

    n = 3
    P = np.tile(np.diag([0.5, 0.5, 1.0, 1.0]), (n, 1, 1))
    P[1, 0, 2] = P[1, 2, 0] = 2.0  # symmetric, finite, diagonal fine, but one eigenvalue below zero
    x = np.array([[10.0, 5.0 + 10.0 * k, 1.0, 0.0] for k in range(n)])
    tracks = TrackSet(ids=np.arange(1, n + 1), x=x, P=P,
                      dims=np.tile([4.5, 1.8, 1.5], (n, 1)), box_yaw=np.zeros(n), object_class=np.ones(n, dtype=np.int64),
                      status=np.ones(n, dtype=np.int64), hits=np.zeros(n, dtype=np.int64),
                      misses=np.zeros(n, dtype=np.int64), born=np.zeros(n), last_update=np.full(n, 1.0),
                      existence=np.full(n, 0.9), sources=object_array([frozenset({"rsu_00"})] * n),
                      vehicle_id=object_array([""] * n))
    v = InputValidator()
    kept = v.tracks(tracks, 1.0, 1.0)
    assert kept.ids.tolist() == [1, 3] and v.rejected["bad_covariance"] == 1
    assert v.tracks(kept, 1.1, 1.1) is kept  # every covariance fine: the message as it came


def test_covariance_intersection_of_a_stack_is_each_pair_fused_on_its_own():
    rng = np.random.default_rng(7)
    A, B = rng.normal(size=(2, 30, 4, 4))
    Pa, Pb = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(4), B @ B.transpose(0, 2, 1) + 0.1 * np.eye(4)
    xa, xb = rng.normal(size=(2, 30, 4))
    Pa[3] = 0.0  # a singular one: that pair keeps the smaller covariance, the others are fused as usual
    x, P = covariance_intersection(xa, Pa, xb, Pb)
    for k in range(30):
        fx, fP = covariance_intersection(xa[k], Pa[k], xb[k], Pb[k])
        assert np.allclose(x[k], fx, atol=1e-12) and np.allclose(P[k], fP, atol=1e-12)
    assert np.array_equal(P[3], Pa[3]) and np.array_equal(x[3], xa[3])


def test_a_far_sensor_off_the_same_way_in_every_frame_does_not_pull_the_global_twin_off():
    """A parked car 52 m from one site's RSU, seen well, and 76 m from another site's RSU, which sees a few points
    of it and completes its box 2.7 m off, the same way in every frame (its declared deviation: 1.6 m); the car
    also reports itself by V2X (3 m GNSS noise) to the far site's edge server. Averaging the far RSU's frames as
    if their errors were independent makes the far site's track confident of the wrong place (0.3 m for a 2.1 m
    error: sweep seed 11, s07_airport), and the global twin follows it; carried as the systematic error it is,
    the global twin keeps the near view."""
    from dataclasses import replace

    from mobility_twin.twin import GlobalTwin, LocalTwin, LocalTwinConfig
    from mobility_twin.twin.channels import default_channels
    from mobility_twin_core.model import EdgeServer

    channels = default_channels()
    near = LocalTwin(LocalTwinConfig("site_0", rsus=("rsu_04",)), channels=channels, id_offset=10_000_000)
    server = EdgeServer("edge_1", -100.0, -500.0, 300.0, 2.5e10, "site_1")
    far = LocalTwin(LocalTwinConfig("site_1", rsus=("rsu_01",)), [server], channels=channels, id_offset=20_000_000)
    cloud = GlobalTwin()
    rng = np.random.default_rng(3)
    truth = np.array([-277.2, -590.7])
    for k in range(200):  # 20 s
        t = 0.1 * k
        seen = truth + rng.normal(0.0, 0.08, 2)
        near.ingest(frame("rsu_04", t, [tuple(seen)], sensor=(-310.0, -550.0), sigma=0.78), "rsu_lidar")
        off = truth + np.array([-2.69, 0.41]) + rng.normal(0.0, 0.3, 2)
        f = frame("rsu_01", t + 0.02, [tuple(off)], sensor=(-230.0, -650.0), sigma=1.63)
        far.ingest(replace(f, confidence=np.array([0.2])), "rsu_lidar")
        gnss = truth + rng.normal(0.0, 3.0, 2)
        far.ingest(v2x_detections("edge_1", (-100.0, -500.0), t + 0.04, [1724], [gnss[0]], [gnss[1]], [0.0], [0.0],
                                  [0.0], 3.0, np.array([[4.6, 1.8, 1.5]]), [1]), "v2x")
        for twin in (near, far):
            snap = twin.snapshot(t + 0.05)
            cloud.ingest(snap.site_id, t + 0.05, snap.tracks)
    far_track = far.snapshot(20.0).tracks
    assert len(far_track) == 1
    far_sd = np.sqrt(far_track.P[0, 0, 0])
    assert far_sd > 1.0, f"the far site claims {far_sd:.2f} m of a 2.7 m error repeated in every frame"
    shown = cloud.tracks_at(20.0)
    assert len(shown) == 1
    assert np.hypot(*(shown.x[0, :2] - truth)) < 0.5  # the near view, not the far site's repeated error


@pytest.mark.parametrize("fault, reason", [
    (lambda f: f.xy.__setitem__((2, 0), np.nan), "not_finite"),
    (lambda f: f.velocity.__setitem__((2, 0), np.inf), "not_finite"),
    (lambda f: f.velocity.__setitem__((2, 0), 1.0), "not_finite"),  # one velocity component, the other NaN
    (lambda f: f.xy.__setitem__(2, (5000.0, 5.0)), "outside_area"),
    (lambda f: f.velocity.__setitem__(2, (80.0, 0.0)), "implausible_speed"),
    (lambda f: f.cov.__setitem__(2, np.diag([1e-8, 1e-8])), "bad_covariance"),
    (lambda f: f.cov.__setitem__(2, np.diag([3000.0, 1.0])), "bad_covariance"),
    (lambda f: f.dims.__setitem__((2, 0), -1.0), "implausible_box"),
    (lambda f: f.dims.__setitem__((2, 0), 40.0), "implausible_box"),
])
def test_each_implausible_object_is_refused_with_its_reason_and_the_rest_of_the_frame_kept(fault, reason):
    from mobility_twin.twin.validation import InputLimits, InputValidator

    v = InputValidator(InputLimits(area=((-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0))))
    good = frame("rsu_00", 1.0, [(10.0, 5.0), (20.0, 5.0), (30.0, 5.0), (40.0, 5.0)])
    good.velocity[1] = (10.0, 0.0)  # measured velocities next to unmeasured ones
    assert v.detections(good, 1.0) is good and not +v.rejected  # nothing wrong: the frame as it came
    fault(good)
    kept = v.detections(good, 1.0)
    assert kept.xy[:, 0].tolist() == [10.0, 20.0, 40.0] and +v.rejected == {reason: 1}


def test_a_sites_relays_of_one_instant_are_one_frame_each_server_still_its_own_source():
    """A local twin given an instant's relays of its three servers (and one from another site's server) fuses
    the three as one frame; each server's entity twin counts its relay, the publication carries one provenance
    entry per relay, and the foreign relay is refused and counted."""
    from mobility_twin.twin import LocalTwin, LocalTwinConfig
    from mobility_twin.twin.channels import default_channels
    from mobility_twin_core.model import EdgeServer

    servers = [EdgeServer(f"edge_{s}", 200.0 * s, 0.0, 150.0, 2.5e10, "site_0") for s in range(3)]
    twin = LocalTwin(LocalTwinConfig("site_0"), servers, channels=default_channels())
    rng = np.random.default_rng(8)
    for k in range(10):
        t = 0.1 * k
        relays = [(v2x_detections(f"edge_{s}", (200.0 * s, 0.0), t, [10 * s, 10 * s + 1],
                                  200.0 * s + 10.0 * t + np.array([0.0, 20.0]) + rng.normal(0, 1, 2),
                                  rng.normal(0, 1, 2), [0.0, 0.0], [10.0, 10.0], [0.0, 0.0], 1.5,
                                  np.tile([4.6, 1.8, 1.5], (2, 1)), [1, 1]), "v2x", f"edge_{s}") for s in range(3)]
        foreign = (v2x_detections("edge_9", (900.0, 0.0), t, [99], [900.0], [0.0], [0.0], [0.0], [0.0], 1.5,
                                  np.array([[4.6, 1.8, 1.5]]), [1]), "v2x", "edge_9")
        assert twin.ingest_many([*relays, foreign]) == [True, True, True, False]
    assert twin.tracker.stats.frames == 10 and twin.stats.frames == 30
    assert twin.stats.rejected["unknown_source"] == 10
    assert [twin.entities[f"edge_{s}/v2x"].received for s in range(3)] == [10, 10, 10]
    snap = twin.snapshot(1.0)
    assert len(snap.tracks) == 6 and len(snap.provenance) == 30
    assert {s for sources in snap.tracks.sources for s in sources} == {f"edge_{s}/v2x" for s in range(3)}
