"""T-Drive as SUMO demand: every fix accounted for, trips map-matched and routed, unroutable trips counted."""

import numpy as np
import pytest

pytest.importorskip("libsumo")

from mobility_twin_sim.sumo import build_beijing_cbd, tools
from mobility_twin_sim.sumo.demand import (
    FixSkip,
    FixUse,
    RoadMatcher,
    TripInfo,
    TripRules,
    duarouter,
    route_tdrive,
    taxi_speeds,
    tdrive_trips,
    window_bounds,
    write_vtypes,
)
from mobility_twin_sim.sumo.prepare import network_box
from mobility_twin_sim.tdrive import BUNDLED

pytestmark = pytest.mark.usefixtures("sumo_cache")  # a SUMO cache of this module's own (conftest)


@pytest.fixture(scope="module")
def cbd():
    net = build_beijing_cbd()
    return net, RoadMatcher(net.net_file)


@pytest.fixture(scope="module")
def demand(cbd):
    net, matcher = cbd
    begin, end = window_bounds("2008-02-02 16:00:00", 3600.0)
    return tdrive_trips(net, net.frame, BUNDLED / "cbd", begin, end, network_box(net, net.frame), matcher=matcher)


def test_every_fix_of_the_cbd_data_is_used_or_skipped_with_a_reason(demand):
    acc = demand.account
    acc.check()
    lines = sum(1 for f in (BUNDLED / "cbd").glob("*.txt") for _ in f.open())
    assert acc.read == lines == demand.reader.lines_read
    assert acc.used_total + acc.skipped_total == acc.read
    assert acc.used[FixUse.TRIP_END] > 1000 and len(demand.trips) > 1000
    # the reader's reasons and the trip-building reasons are both there
    assert acc.skipped["outside_area"] > 0 and acc.skipped["zero_coordinate"] > 0
    assert acc.skipped[FixSkip.LONE] > 0 and acc.skipped[FixSkip.STATIONARY] > 0


def test_trips_follow_the_rules_and_depart_when_the_taxi_did(demand):
    rules = TripRules()
    trips = demand.trips
    assert all(t.straight_m >= rules.min_trip_m for t in trips)
    assert all(0 < t.observed_s <= rules.max_gap_s for t in trips)
    depart = np.array([t.depart_s for t in trips])
    assert np.all(np.diff(depart) >= 0) and depart.min() >= 0 and depart.max() < 3600
    assert len({t.trip_id for t in trips}) == len(trips)


def test_map_matching_picks_the_road_in_the_direction_of_travel(cbd):
    net, matcher = cbd
    # a point on the avenue through the origin (y = 0 in map), moving east, then west
    sx, sy = net.frame.to_sumo(np.array([112.0, 112.0]), np.array([1.0, 1.0]))
    xy = np.column_stack([sx, sy])
    edge, pos, dist = matcher.match(xy, np.array([[1.0, 0.0], [-1.0, 0.0]]), 50.0)
    east, west = matcher.edge_ids[edge[0]], matcher.edge_ids[edge[1]]
    assert east != west and dist.max() < 20.0
    assert east[0] < east[2] and west[0] > west[2]  # netgenerate names edges <from column><row><to column><row>
    assert 0.0 < pos[0] < matcher.edge_length[east]


def test_unroutable_trips_are_counted_and_their_fixes_skipped(cbd, demand, tmp_path):
    net, _ = cbd
    vtypes = write_vtypes(tmp_path / "vtypes.add.xml")
    before = demand.account
    # route the T-Drive trips, then fail one and see its fixes move to skipped
    import copy

    d = copy.deepcopy(demand)
    route_tdrive(d, net, tmp_path, vtypes, seed=1)
    routed = {t.trip_id for t in d.trips}
    assert len(routed) == len(demand.trips)  # on the connected grid every map-matched trip routes
    lost = d.mark_unroutable(routed - {d.trips[5].trip_id})
    after = d.account
    after.check()
    assert lost == 1 and after.skipped[FixSkip.UNROUTABLE] >= 1
    assert after.read == before.read and after.used_total < before.used_total


def test_taxi_speed_compares_the_same_trips():
    infos = [TripInfo("tx1_0", 0.0, 100.0, 800.0, 10.0, 0.0, "taxi"), TripInfo("od3", 0.0, 50.0, 500.0, 0, 0, "car"),
             TripInfo("tx2_0", 0.0, 50.0, 400.0, 0.0, 0.0, "taxi")]
    s = taxi_speeds(infos, {"tx1_0": 200.0, "tx2_0": 100.0})
    assert s["trips"] == 2
    assert s["simulated_mps"] == pytest.approx(1200 / 150) and s["observed_mps"] == pytest.approx(1200 / 300)


def test_the_sumo_programs_come_from_the_wheel():
    for name in tools.PROGRAMS:
        assert tools.binary(name).is_file()
    assert tools.tool("randomTrips.py").is_file()


def test_a_trip_to_an_unknown_edge_is_not_left_in_the_routes(cbd, tmp_path):
    net, matcher = cbd
    vtypes = write_vtypes(tmp_path / "vtypes.add.xml")
    trips = tmp_path / "t.trips.xml"
    a, b = matcher.edge_ids[0], matcher.edge_ids[-1]
    trips.write_text(f'<routes><trip id="ok" depart="0" from="{a}" to="{b}" type="taxi"/>'
                     f'<trip id="nowhere" depart="1" from="{a}" to="no_such_edge" type="taxi"/></routes>')
    out = tmp_path / "t.rou.xml"
    assert duarouter(net.net_file, trips, out, vtypes, seed=1) == {"ok"}
    assert 'id="nowhere"' not in out.read_text()
