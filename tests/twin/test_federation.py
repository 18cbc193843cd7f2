"""Local twins federated into the global twin: one track per vehicle, handover, staleness."""

import numpy as np
import pytest

from mobility_twin.twin import GlobalTwin, GlobalTwinConfig, LocalTwin, LocalTwinConfig, default_channels
from mobility_twin_core import EdgeServer
from tests.twin.test_tracker import frame

WEST = ((-100.0, -50.0), (0.0, -50.0), (0.0, 50.0), (-100.0, 50.0))
EAST = ((0.0, -50.0), (100.0, -50.0), (100.0, 50.0), (0.0, 50.0))


class SiteTwin(LocalTwin):
    def ingest_rsu(self, frame) -> bool:
        """A frame of one of the site's RSUs, as the node passes it from the rsu_lidar channel."""
        return self.ingest(frame, "rsu_lidar")


def _sites():
    channels = default_channels()
    west = SiteTwin(LocalTwinConfig("site_0", rsus=("rsu_w",), area=WEST), [EdgeServer("edge_0", -50, 0, 80, 2e10)],
                     channels=channels)
    east = SiteTwin(LocalTwinConfig("site_1", rsus=("rsu_e",), area=EAST), [EdgeServer("edge_1", 50, 0, 80, 2e10)],
                     channels=channels, id_offset=1000)
    return west, east


def test_vehicle_crossing_the_border_keeps_its_global_id():
    west, east = _sites()
    glob = GlobalTwin()
    ids = []
    for k in range(120):  # 10 m/s from x = -60 to x = +60; the RSUs see 45 m around x = -40 and x = +40
        t = k * 0.1
        x = -60.0 + 10.0 * t
        west.ingest_rsu(frame("rsu_w", t, [(x, 0.0)] if abs(x + 40) < 45 else [], sensor=(-40.0, 0.0), sensor_range=45))
        east.ingest_rsu(frame("rsu_e", t + 0.05, [(x + 0.5, 0.0)] if abs(x - 40) < 45 else [], sensor=(40.0, 0.0),
                          sensor_range=45))
        for twin in (west, east):
            snap = twin.snapshot(t + 0.05)
            glob.ingest(snap.site_id, t + 0.05, snap.tracks)
        glob.update_staleness(t + 0.05)
        tracks = glob.tracks_at(t + 0.05)
        near = tracks.ids[np.hypot(tracks.x[:, 0] - x, tracks.x[:, 1]) < 2.0]
        if len(near):
            ids.append(set(near.tolist()))
    assert all(len(s) == 1 for s in ids[5:])  # one global track at a time, in the overlap too
    assert len(set.union(*ids[5:])) == 1  # and always the same id
    assert glob.stats["handovers"] + glob.stats["snapshots"] > 0


def test_silent_local_twin_goes_stale_and_its_tracks_age_out_while_others_keep_working():
    west, east = _sites()
    glob = GlobalTwin(GlobalTwinConfig(stale_after_s=1.0, track_ttl_s=1.5, dormant_show_s=2.0))
    for k in range(10):
        t = k * 0.1
        west.ingest_rsu(frame("rsu_w", t, [(-40.0, 10.0)], sensor=(-40.0, 0.0), sensor_range=45))
        east.ingest_rsu(frame("rsu_e", t, [(40.0, 10.0)], sensor=(40.0, 0.0), sensor_range=45))
        for twin in (west, east):
            glob.ingest(twin.config.site_id, t, twin.snapshot(t).tracks)
    assert len(glob.tracks_at(1.0)) == 2
    stale = []
    for k in range(10, 40):  # the west site falls silent
        t = k * 0.1
        east.ingest_rsu(frame("rsu_e", t, [(40.0, 10.0)], sensor=(40.0, 0.0), sensor_range=45))
        glob.ingest("site_1", t, east.snapshot(t).tracks)
        stale += glob.update_staleness(t)
    assert stale == ["site_0"] and glob.sites["site_0"].stale
    assert len(glob.tracks_at(2.5)) == 2  # the silent site's vehicle went unseen: shown for dormant_show_s
    remaining = glob.tracks_at(4.0)
    assert len(remaining) == 1 and remaining.x[0, 0] > 0  # the east vehicle is still tracked
    # the west site comes back: it is fresh again and its vehicle reappears
    for k in range(40, 50):
        t = k * 0.1
        west.ingest_rsu(frame("rsu_w", t, [(-40.0, 10.0)], sensor=(-40.0, 0.0), sensor_range=45))
        glob.ingest("site_0", t, west.snapshot(t).tracks)
    assert not glob.sites["site_0"].stale and len(glob.tracks_at(5.0)) == 2


def test_local_twin_counts_foreign_sources_and_estimates_server_load():
    west, _ = _sites()
    assert not west.ingest_rsu(frame("rsu_x", 0.0, [(-40.0, 0.0)]))
    assert west.stats.rejected["unknown_source"] == 1
    for k in range(5):
        west.ingest_rsu(frame("rsu_w", k * 0.1, [(-40.0, 0.0), (-60.0, 5.0)], sensor=(-40.0, 0.0)))
    snap = west.snapshot(0.5)
    server = snap.servers[0]
    assert server.estimated_served == 2
    assert west.report_server("edge_0", 0.5, load=server.estimated_load, vehicles_served=2)
    assert server.deviation_hz == 0.0
    assert not west.report_server("edge_9", 0.5, 0.1, 1) and west.stats.rejected["unknown_server"] == 1
    ages = {e.entity_id: age for e, age, _ in snap.entities}
    assert ages["rsu_w"] == pytest.approx(0.1)


def test_a_sensor_outage_keeps_the_ids_of_the_vehicles_it_saw():
    """An RSU silent for 8 s (crashed, or its link down) while another RSU of the site keeps sending: the
    vehicles only it saw are lost, and when it is back they get their local and global ids back; a vehicle
    that leaves a working sensor's view is forgotten after the re-identification window as before."""
    from mobility_twin.tracking import MultiSourceTracker, TrackerConfig

    tracker = MultiSourceTracker(TrackerConfig(reid_window_s=5.0, outage_keep_s=30.0))
    glob = GlobalTwin(GlobalTwinConfig(reid_window_s=5.0, dormant_keep_s=30.0))
    parked, leaving = (10.0, 5.0), (-20.0, 5.0)
    for k in range(30):  # both RSUs see their vehicle
        t = k * 0.1
        tracker.update(frame("rsu_a", t, [parked], sensor=(0.0, 0.0), sensor_range=30.0))
        tracker.update(frame("rsu_b", t + 0.01, [leaving], sensor=(-30.0, 0.0), sensor_range=30.0))
        glob.ingest("site_0", t + 0.02, tracker.confirmed_at(t + 0.02))
    local_before = {tuple(np.round(x[:2])): i for i, x in zip(tracker.tracks.ids, tracker.tracks.x, strict=True)}
    global_before = glob.tracks_at(3.0)
    gid_parked = int(global_before.ids[np.argmin(np.hypot(*(global_before.x[:, :2] - parked).T))])
    for k in range(30, 110):  # rsu_a silent for 8 s; the vehicle seen by rsu_b drives out of its view
        t = k * 0.1
        tracker.update(frame("rsu_b", t + 0.01, [], sensor=(-30.0, 0.0), sensor_range=30.0))
        glob.ingest("site_0", t + 0.02, tracker.confirmed_at(t + 0.02))
        glob.update_staleness(t + 0.02)
    assert tracker.confirmed_at(10.9).ids.tolist() == [local_before[parked]]  # unseen, not gone: it coasts
    for k in range(110, 115):  # rsu_a is back and sees the parked vehicle again
        t = k * 0.1
        tracker.update(frame("rsu_a", t, [parked], sensor=(0.0, 0.0), sensor_range=30.0))
        tracker.update(frame("rsu_b", t + 0.01, [], sensor=(-30.0, 0.0), sensor_range=30.0))
        glob.ingest("site_0", t + 0.02, tracker.confirmed_at(t + 0.02))
        glob.update_staleness(t + 0.02)
    now = tracker.confirmed_at(11.5)
    assert now.ids.tolist() == [local_before[parked]]  # the same local id ...
    assert glob.tracks_at(11.5).ids.tolist() == [gid_parked]  # ... and the same global id
    # the vehicle that left rsu_b's view (rsu_b kept working) is not kept past the window
    tracker.update(frame("rsu_b", 11.6, [(-20.0, 5.0)], sensor=(-30.0, 0.0), sensor_range=30.0))
    assert local_before[leaving] not in tracker.tracks.ids


def test_refused_tracks_keep_their_link_to_the_global_id():
    from mobility_twin.tracking import MultiSourceTracker

    tracker = MultiSourceTracker()
    glob = GlobalTwin()
    for k in range(20):
        tracker.update(frame("rsu_a", k * 0.1, [(10.0, 5.0), (20.0, 5.0)]))
        glob.ingest("site_0", k * 0.1 + 0.02, tracker.confirmed_at(k * 0.1 + 0.02))
    gids = glob.tracks_at(2.0).ids.tolist()
    tracks = tracker.confirmed_at(2.02)
    refused = tracks.ids[:1]  # validation refused one track of this update (a bad value): the site did report it
    assert glob.ingest("site_0", 2.02, tracks.select(np.array([False, True])), keep_linked=refused)
    assert glob.ingest("site_0", 2.12, tracker.confirmed_at(2.12))
    assert glob.tracks_at(2.12).ids.tolist() == gids


def _reported(ids, xs, t, *, sigma=0.3, vehicle_ids=None, source="rsu"):
    """A site's local tracks: ids, states (x, y, vx, vy), position sigma (m), updated at ``t``."""
    from mobility_twin.tracking import TrackSet, object_array

    n = len(ids)
    P = np.tile(np.diag([sigma**2, sigma**2, 0.5, 0.5]), (n, 1, 1))
    return TrackSet(ids=np.asarray(ids, dtype=np.int64), x=np.asarray(xs, float).reshape(n, 4), P=P,
                    dims=np.ones((n, 3)), box_yaw=np.zeros(n), object_class=np.ones(n, dtype=np.int64),
                    status=np.ones(n, dtype=np.int64), hits=np.ones(n, dtype=np.int64),
                    misses=np.zeros(n, dtype=np.int64), born=np.full(n, t), last_update=np.full(n, t),
                    existence=np.ones(n), sources=object_array([frozenset({source})] * n),
                    vehicle_id=object_array(vehicle_ids or [""] * n))


def test_one_vehicle_whose_tracks_did_not_meet_at_birth_becomes_one_global_track():
    glob = GlobalTwin(GlobalTwinConfig(merge_after_s=1.0))
    # site_1 first sees the vehicle 6 m off (a late, noisy V2X report), outside the gate: two global ids
    for k in range(30):
        t = k * 0.1
        x = 10.0 * t
        glob.ingest("site_0", t, _reported([1], [(x, 0.0, 10.0, 0.0)], t))
        off = 6.0 if k < 5 else 0.4
        glob.ingest("site_1", t + 0.01, _reported([1001], [(x, off, 10.0, 0.0)], t + 0.01, sigma=1.5, source="v2x"))
        if k == 4:
            assert len(glob.tracks_at(t + 0.01)) == 2
    shown = glob.tracks_at(3.0)
    assert len(shown) == 1 and glob.stats["merges"] == 1
    assert glob.links["site_0"][1] == glob.links["site_1"][1001] == int(shown.ids[0])  # the older id
    assert shown.sources[0] == frozenset({"rsu", "v2x"})


def test_a_local_id_a_site_gives_another_vehicle_does_not_carry_the_first_ones_identity():
    """A local twin that reused an id (found on the SUMO city: a tracker's replay after a late frame shifted its
    ids) reports id 7, which was a V2X vehicle 400 m away, for a car parked where no global track stands. The
    link by local id would move the far vehicle's global id and its vehicle id onto the car, where that id
    then blocked the merge with another site's track of the car (different vehicle ids) for the rest of the
    run. A local track beyond the gate of its own global track is another vehicle: it gets a global track of
    its own."""
    glob = GlobalTwin()
    for k in range(10):
        t = k * 0.1
        glob.ingest("site_0", t, _reported([7], [(-400.0, 0.0, 0.0, 0.0)], t, sigma=1.5, vehicle_ids=["1595"]))
    far = glob.links["site_0"][7]
    for k in range(10, 30):
        t = k * 0.1
        glob.ingest("site_0", t, _reported([7], [(0.0, 0.0, 0.0, 0.0)], t))
        glob.ingest("site_1", t + 0.01, _reported([1001], [(0.1, 0.0, 0.0, 0.0)], t + 0.01, vehicle_ids=["1245"]))
        glob.update_staleness(t)
    shown = glob.tracks_at(2.95)
    near = np.flatnonzero(np.hypot(shown.x[:, 0], shown.x[:, 1]) < 5.0)
    assert len(near) == 1 and shown.vehicle_id[near[0]] == "1245" and int(shown.ids[near[0]]) != far
    assert glob.links["site_0"][7] == glob.links["site_1"][1001] and glob.stats["unlinked"] == 1


def test_neighbours_reported_by_different_sites_or_with_other_ids_are_not_merged():
    glob = GlobalTwin(GlobalTwinConfig(merge_after_s=0.5))
    for k in range(30):  # two cars 3.5 m apart, lane by lane, each seen well by one site only
        t = k * 0.1
        glob.ingest("site_0", t, _reported([1], [(10.0 * t, 0.0, 10.0, 0.0)], t, sigma=0.2))
        glob.ingest("site_1", t, _reported([1001], [(10.0 * t, 3.5, 10.0, 0.0)], t, sigma=0.2))
        # and a V2X vehicle next to a LiDAR one, close enough for the gate, but with another vehicle's id
        glob.ingest("site_2", t, _reported([2001], [(50.0, 50.0, 0.0, 0.0)], t, sigma=1.5, vehicle_ids=["taxi_7"]))
        glob.ingest("site_3", t, _reported([3001], [(51.0, 50.0, 0.0, 0.0)], t, sigma=1.5, vehicle_ids=["taxi_9"]))
        # one site reporting two tracks close together: its own business, not a cross-site duplicate
        glob.ingest("site_4", t, _reported([4001, 4002], [(-50.0, 0.0, 0.0, 0.0), (-50.0, 1.0, 0.0, 0.0)], t,
                                           sigma=1.5))
    assert len(glob.tracks_at(3.0)) == 6 and glob.stats["merges"] == 0


def test_two_vehicles_linked_to_one_global_id_by_two_sites_come_apart():
    """Two parked cars 9 m apart, both tracked by site_0. site_1's track starts on the first car, then follows
    the second one (sweep seed 0, s07_airport: its track was linked to the global id of the car it passed).
    One global id would stand for two vehicles 9 m apart, shown between them or doubling the second car;
    instead site_1's track leaves that id and joins the second car's."""
    glob = GlobalTwin()
    for k in range(40):
        t = k * 0.1
        glob.ingest("site_0", t, _reported([1, 2], [(0.0, 0.0, 0.0, 0.0), (9.0, 0.0, 0.0, 0.0)], t))
        x = 0.0 if k < 10 else 9.0
        glob.ingest("site_1", t + 0.01, _reported([1001], [(x, 0.0, 0.0, 0.0)], t + 0.01, sigma=0.5))
    shown = glob.tracks_at(4.0)
    assert len(shown) == 2
    assert sorted(np.round(shown.x[:, 0]).tolist()) == [0.0, 9.0]
    assert glob.links["site_1"][1001] == glob.links["site_0"][2] != glob.links["site_0"][1]
    assert glob.stats["unlinked"] == 1
