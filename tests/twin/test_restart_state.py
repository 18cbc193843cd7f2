"""State that survives a restart: the global twin's id map, a silent site's links, the local tracker's ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mobility_twin.tracking import MultiSourceTracker, TrackerConfig, TrackSet
from mobility_twin.tracking.trackset import unpack_array
from mobility_twin.twin import GlobalTwin, GlobalTwinConfig
from tests.twin.test_federation import EAST, WEST, _sites  # noqa: F401 - the two-site fixture
from tests.twin.test_tracker import frame, ids_at


def _drive(west, east, glob, t0: float, t1: float, y: float = 10.0):
    for k in range(round((t1 - t0) * 10)):
        t = t0 + k * 0.1
        west.ingest_rsu(frame("rsu_w", t, [(-40.0, y)], sensor=(-40.0, 0.0), sensor_range=45))
        east.ingest_rsu(frame("rsu_e", t, [(40.0, y)], sensor=(40.0, 0.0), sensor_range=45))
        for twin in (west, east):
            glob.ingest(twin.config.site_id, t, twin.snapshot(t).tracks)
        glob.update_staleness(t)


def _global_ids(glob, t):
    tracks = glob.tracks_at(t)
    return sorted(tracks.ids[np.abs(tracks.x[:, 1] - 10.0) < 2.0].tolist())


def test_a_restarted_global_twin_gives_the_same_ids_back():
    west, east = _sites()
    glob = GlobalTwin()
    _drive(west, east, glob, 0.0, 2.0)
    before = _global_ids(glob, 2.0)
    saved = json.loads(json.dumps(glob.to_plain()))  # what the node writes and reads back
    resumed = GlobalTwin.from_plain(saved)
    _drive(west, east, resumed, 4.0, 5.0)  # the local twins kept running; the node was down 2 s
    assert len(before) == 2 and _global_ids(resumed, 5.0) == before


def test_a_site_silent_longer_than_the_reid_window_gets_its_ids_back_when_it_returns():
    west, east = _sites()
    glob = GlobalTwin(GlobalTwinConfig(stale_after_s=1.0, reid_window_s=5.0, dormant_keep_s=30.0))
    _drive(west, east, glob, 0.0, 2.0)
    west_id = _global_ids(glob, 2.0)[0]
    for k in range(100):  # the west site is silent for 10 s (restarting), the east keeps reporting
        t = 2.0 + k * 0.1
        east.ingest_rsu(frame("rsu_e", t, [(40.0, 10.0)], sensor=(40.0, 0.0), sensor_range=45))
        glob.ingest("site_1", t, east.snapshot(t).tracks)
        glob.update_staleness(t)
    assert glob.sites["site_0"].stale
    _drive(west, east, glob, 12.0, 13.0)  # back with the same local ids (its tracker resumed them)
    assert west_id in _global_ids(glob, 13.0)


def test_a_restarted_tracker_finds_its_saved_tracks_again_under_their_old_ids():
    cfg = TrackerConfig()
    tracker = MultiSourceTracker(cfg)
    pos = lambda t: (10.0 * t, 5.0)  # noqa: E731 - 10 m/s along x
    for k in range(20):
        tracker.update(frame("rsu", 0.1 * k, [pos(0.1 * k)]))
    (old_id,) = ids_at(tracker, 1.9, [pos(1.9)])
    saved = json.loads(json.dumps(tracker.saved()))
    restarted = MultiSourceTracker(cfg)
    assert restarted.restore(saved, keep_s=20.0) == 1
    for k in range(5):  # 8 s later, where the vehicle has driven on
        t = 9.9 + 0.1 * k
        restarted.update(frame("rsu", t, [pos(t)]))
    assert ids_at(restarted, 10.3, [pos(10.3)]) == [old_id]
    assert restarted.next_id > old_id  # new vehicles never reuse a saved id


def _tracks_of_a_run():
    tracker = MultiSourceTracker(TrackerConfig())
    for k in range(20):
        t = 0.1 * k
        tracker.update(frame("rsu", t, [(10.0 * t, 5.0), (-3.0, 20.0 - t)]))
    return tracker.state.tracks


def test_saved_tracks_come_back_bit_for_bit_and_older_list_saves_still_load():
    tracks = _tracks_of_a_run()
    tracks.seen_by[:] = np.uint64(1) << np.uint64(63)  # the top bit of the sources' mask survives
    plain = json.loads(json.dumps(tracks.to_plain()))
    assert isinstance(plain["P"], dict)  # packed, not the numbers as text
    back = TrackSet.from_plain(plain)
    for name in ("ids", "x", "P", "dims", "box_yaw", "status", "born", "last_update", "existence", "seen_by",
                 "systematic"):
        got, want = getattr(back, name), getattr(tracks, name)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), name
    assert list(back.sources) == list(tracks.sources)
    lists = {k: (v if k in ("sources", "vehicle_id") else unpack_array(v, float).tolist()) for k, v in plain.items()}
    del lists["seen_by"]  # a save from before the tracker kept it
    older = TrackSet.from_plain(lists)
    assert np.array_equal(older.ids, tracks.ids) and np.array_equal(older.P, tracks.P)
    assert not older.seen_by.any()


def test_a_damaged_save_is_an_error_not_zeros():
    plain = _tracks_of_a_run().to_plain()
    for damage in ({"P": {**plain["P"], "base64": "not base64!"}},
                   {"x": {**plain["x"], "shape": [1, 4]}},
                   {"ids": {**plain["ids"], "dtype": "|O"}}):
        with pytest.raises(ValueError):
            TrackSet.from_plain({**plain, **damage})
    with pytest.raises(KeyError):
        TrackSet.from_plain({k: v for k, v in plain.items() if k != "x"})
