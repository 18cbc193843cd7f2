"""Route guidance, ROS-free (issue 18): the road graph and map-matching on the real SUMO network of the city
scenario, the traffic-state estimator, the router against SUMO's own routing, and the guidance's decisions
(hysteresis, closures, load, bad input)."""

import math

import numpy as np
import pytest

sumolib = pytest.importorskip("sumolib")


@pytest.fixture(scope="module")
def net_file():
    from mobility_twin_sim.sumo import load_network

    return str(load_network("beijing_cbd").net_file)


@pytest.fixture(scope="module")
def graph(net_file):
    from mobility_twin.guidance import RoadGraph

    return RoadGraph.from_net_file(net_file)


def _fresh(graph, now=100.0, **kw):
    from mobility_twin.guidance import EstimatorConfig, TrafficStateEstimator

    est = TrafficStateEstimator(graph, EstimatorConfig(**kw))
    est.observe(now, np.zeros(0, np.int64), np.zeros(0))  # nothing seen yet, but the twin is alive
    est.newest_s = now
    return est


def test_the_graph_is_the_networks_roads_and_connections(graph, net_file):
    net = sumolib.net.readNet(net_file)
    assert len(graph) == sum(1 for e in net.getEdges() if e.allows("passenger"))
    e = graph.index["A0A1"]
    assert set(graph.ids[i] for i in graph.successors(e)) == {t.getID() for t in net.getEdge("A0A1").getOutgoing()}
    assert graph.free_flow_s[e] == pytest.approx(net.getEdge("A0A1").getLength() / net.getEdge("A0A1").getSpeed())
    assert e in graph.predecessors(graph.successors(e)[0])


def test_map_matching_takes_the_road_in_the_direction_of_travel(graph, net_file):
    from mobility_twin.guidance import EdgeMatcher

    net = sumolib.net.readNet(net_file)
    m = EdgeMatcher(graph)
    edge = net.getEdge("C2D2")
    lane = np.asarray([ln for ln in edge.getLanes() if ln.allows("passenger")][-1].getShape())  # next to the median
    a, b = lane[0], lane[-1]
    heading = math.atan2(b[1] - a[1], b[0] - a[0])
    pts = a + np.array([[0.1], [0.5], [0.9]]) * (b - a)
    edges, along = m.locate(pts[:, 0], pts[:, 1], np.full(3, heading))
    assert [graph.ids[i] for i in edges] == ["C2D2"] * 3
    assert np.all(np.diff(along) > 0) and along[0] < 0.25 and along[2] > 0.75
    back = m.match(pts[:, 0], pts[:, 1], np.full(3, heading + math.pi))  # the other carriageway
    assert all(graph.ids[i] == "D2C2" for i in back)
    assert m.match([a[0] + 500.0], [a[1] + 113.0], [heading])[0] == -1  # in the middle of a block


def test_map_matching_is_the_best_of_the_nearest_samples_by_distance_and_turn(graph):
    """The matcher looks at the two nearest lane samples first and asks again only where a farther one
    could win: its answer is the best of its ``candidates`` nearest samples, each point on its own."""
    from mobility_twin.guidance import EdgeMatcher

    m = EdgeMatcher(graph)
    rng = np.random.default_rng(3)
    lo, hi = m.points.min(axis=0), m.points.max(axis=0)
    xy = np.concatenate([m.points[rng.integers(len(m.points), size=300)] + rng.normal(0.0, 4.0, (300, 2)),
                         rng.uniform(lo, hi, (200, 2))])  # near the lanes, and anywhere
    heading = rng.uniform(-math.pi, math.pi, len(xy))
    heading[::7] = np.nan  # not known: any direction
    got = m.nearest(xy[:, 0], xy[:, 1], heading)
    want = []
    for (x, y), h in zip(xy, heading, strict=True):
        d = np.hypot(m.points[:, 0] - x, m.points[:, 1] - y)
        near = np.argsort(d, kind="stable")[:m.k]
        near = near[d[near] <= m.max_m]
        turn = np.abs((m.angle[near] - h + math.pi) % (2 * math.pi) - math.pi)
        turn = np.where(np.isnan(turn), 0.0, turn)
        score = np.where(turn <= m.max_heading, d[near] + 3.0 * turn, np.inf)
        want.append(near[np.argmin(score)] if np.isfinite(score).any() else -1)
    assert (got >= 0).sum() > 100 and (got == -1).sum() > 50  # both kinds of answer are tried
    assert got.tolist() == want


def test_the_estimate_is_free_flow_unobserved_and_sees_a_queue_only_where_it_is(graph):
    from mobility_twin.guidance import EstimatorConfig, TrafficStateEstimator

    est = TrafficStateEstimator(graph, EstimatorConfig(horizon_s=180.0, prior_samples=3.0))
    e = graph.index["C2D2"]
    assert np.allclose(est.travel_time(0.0), graph.free_flow_s)
    assert np.isinf(est.age(0.0)[e])
    # an RSU at the junction sees a queue on the last 20% of the road for two minutes, once a second
    for t in range(120):
        n = 6
        est.observe(float(t), np.full(n, e), np.zeros(n), np.linspace(0.82, 0.99, n))
    tt = est.travel_time(120.0)[e]
    free = graph.free_flow_s[e]
    segments = est.n_seg[e]
    stopped_part = math.ceil(0.2 * segments + 1) / segments * graph.length[e] / est.config.min_speed_mps
    assert free * 1.5 < tt < stopped_part + free  # slower, but the rest of the road stays at free flow
    whole_road_at_queue_speed = graph.length[e] / est.config.min_speed_mps
    assert tt < 0.4 * whole_road_at_queue_speed
    assert est.age(130.0)[e] == pytest.approx(11.0)
    # nothing seen for longer than the horizon: back to free flow
    assert est.travel_time(120.0 + 200.0)[e] == pytest.approx(free)
    # a stopped car seen within a light cycle does not make a jam of a road driven at the limit
    f = graph.index["D2E2"]
    for t in range(200, 380):
        est.observe(float(t), np.array([f, f, f]), np.array([graph.speed[f], graph.speed[f], 0.0 if t < 190 else
                                                            graph.speed[f]]), np.array([0.2, 0.5, 0.8]))
    assert est.travel_time(380.0)[f] == pytest.approx(graph.free_flow_s[f], rel=0.05)


def test_the_forecast_extends_a_growing_queue_and_not_a_steady_one(graph):
    from mobility_twin.guidance import EstimatorConfig, TrafficStateEstimator

    window = 180.0
    est = TrafficStateEstimator(graph, EstimatorConfig(horizon_s=window, forecast_s=120.0))
    flat = TrafficStateEstimator(graph, EstimatorConfig(horizon_s=window, forecast_s=0.0))
    grows, steady, once = graph.index["C2D2"], graph.index["D2E2"], graph.index["E2F2"]
    for t in range(0, 360):  # a queue that slows C2D2 from the limit to a crawl, D2E2 at half its limit throughout
        v = graph.speed[grows] * max(1.0 - t / 300.0, 0.05)
        along = np.linspace(0.05, 0.95, 8)  # along the whole road
        e = np.repeat([grows, steady], 8)
        speeds = np.repeat([v, 0.5 * graph.speed[steady]], 8)
        for est_ in (est, flat):
            est_.observe(float(t), e, speeds, np.tile(along, 2))
    for est_ in (est, flat):  # E2F2 seen a few times in this window only: no trend from so little
        est_.observe(355.0, np.array([once] * 3), np.full(3, 0.3 * graph.speed[once]), np.full(3, 0.5))
    now = 359.0
    fore, plain = est.travel_time(now), flat.travel_time(now)
    assert fore[grows] > 1.2 * plain[grows]  # growing: the CAV will meet it slower than the window's mean
    assert fore[steady] == pytest.approx(plain[steady], rel=0.02)  # steady: no trend
    assert fore[once] == pytest.approx(plain[once])  # one window only: no trend
    unseen = np.ones(len(graph), bool)
    unseen[[grows, steady, once]] = False
    assert np.allclose(fore[unseen], graph.free_flow_s[unseen])
    # the trend never makes a road faster than its limit, nor a queue disappear
    for t in range(360, 540):
        est.observe(float(t), np.array([grows]), np.array([graph.speed[grows]]), np.array([0.5]))
    est.observe(539.0, np.array([steady] * 20), np.full(20, 0.5 * graph.speed[steady]), np.full(20, 0.5))
    assert est.travel_time(539.0)[grows] >= graph.free_flow_s[grows] - 1e-9
    assert est.travel_time(539.0)[grows] >= 0.5 * flat.travel_time(539.0)[grows] - 1e-9


def test_closures_are_infinite_and_reported_as_changes(graph):
    est = _fresh(graph)
    assert len(est.changed(100.0)) == 0  # the reference
    e = graph.index["C2D2"]
    est.close(e)
    assert np.isinf(est.travel_time(100.0)[e])
    assert list(est.changed(101.0)) == [e]
    assert len(est.changed(102.0)) == 0
    est.reopen(e)
    assert list(est.changed(103.0)) == [e]


def test_free_flow_routes_are_sumos_own(graph, net_file):
    libsumo = pytest.importorskip("libsumo")
    from mobility_twin.guidance import Router

    router = Router(graph)
    pairs = [("A0A1", "K8K9"), ("C2D2", "G6G5"), ("E7D7", "A1B1"), ("I5I6", "B3B2")]
    pairs = [(a, b) for a, b in pairs if a in graph.index and b in graph.index]
    assert len(pairs) >= 3
    libsumo.start(["sumo", "-n", net_file, "--no-step-log", "--no-warnings"])
    try:
        for a, b in pairs:
            ours, cost = router.route(graph.index[a], graph.index[b])
            sumo = libsumo.simulation.findRoute(a, b, vType="DEFAULT_VEHTYPE")
            assert sumo.edges, (a, b)
            sumo_cost = sum(graph.free_flow_s[graph.index[e]] for e in sumo.edges[1:])
            assert cost == pytest.approx(sumo_cost, rel=1e-6), (a, b, [graph.ids[i] for i in ours], sumo.edges)
            assert graph.connected(ours) and graph.ids[ours[0]] == a and graph.ids[ours[-1]] == b
    finally:
        libsumo.close()


def test_guidance_answers_bad_requests_with_a_status(graph):
    from mobility_twin.guidance import GuidanceConfig, RouteGuidance, TrafficStateEstimator
    from mobility_twin.guidance import router as r

    g = RouteGuidance(TrafficStateEstimator(graph), GuidanceConfig(stale_s=5.0))
    stale = g.request("cav_0", "A0A1", "K8K9", 100.0)  # no twin data at all
    assert stale.status == r.STALE_TWIN and not stale.command and "no twin data" in stale.reason
    g = RouteGuidance(_fresh(graph), GuidanceConfig(stale_s=5.0))
    assert g.request("cav_0", "A0A1", "nowhere", 100.0).status == r.UNKNOWN_EDGE
    assert g.request("cav_0", ":J1_0", "K8K9", 100.0).status == r.UNKNOWN_EDGE
    g.estimator.close(graph.index["K8K9"])
    unreachable = g.request("cav_0", "A0A1", "K8K9", 100.0)
    assert unreachable.status == r.UNREACHABLE and not unreachable.command and "cav_0" not in g.vehicles
    ok = g.request("cav_1", "A0A1", "C2D2", 100.0)
    assert ok.status == r.ROUTED and ok.command and ok.edges[0] == "A0A1" and ok.edges[-1] == "C2D2"
    assert g.update_position("cav_9", "A0A1") == r.UNKNOWN_VEHICLE
    # the twin goes silent: decisions stop, with a status
    later = [d for d in g.step(100.0 + 200.0)]
    assert later and all(d.status == r.STALE_TWIN and not d.command for d in later)
    assert g.leave("cav_1") and not g.leave("cav_1")
    assert g.update_position("cav_1", "A0A1") == r.UNKNOWN_VEHICLE


def test_reroute_only_for_a_real_gain_and_at_once_around_a_closure(graph):
    from mobility_twin.guidance import GuidanceConfig, RouteGuidance
    from mobility_twin.guidance import router as r

    est = _fresh(graph)
    g = RouteGuidance(est, GuidanceConfig(period_s=60.0, min_gain_rel=0.1, min_gain_s=20.0, stale_s=1e9))
    first = g.request("cav_0", "A0A1", "I5I6", 100.0)
    route = list(first.edges)
    assert first.status == r.ROUTED and len(route) >= 5
    assert g.step(100.5) == []  # nobody due yet
    # a little slower on its next road (less than the hysteresis): kept at its periodic check
    nxt = graph.index[route[2]]
    for t in range(100, 161):
        est.observe(float(t), np.array([nxt]), np.array([0.8 * graph.speed[nxt]]), np.array([0.5]))
    est.newest_s = 161.0
    kept = g.step(161.0)
    assert [d.status for d in kept] == [r.KEPT]
    # a closure on its remaining route: rerouted at once, not at the next period
    g.update_position("cav_0", route[1])
    est.close(graph.index[route[3]])
    moved = g.step(162.0)
    assert [d.status for d in moved] == [r.REROUTED] and route[3] not in moved[0].edges
    assert moved[0].edges[0] == route[1] and moved[0].edges[-1] == "I5I6" and math.isinf(moved[0].gain_s)


def test_each_cav_is_checked_once_per_period_and_the_checks_are_spread(graph):
    from mobility_twin.guidance import GuidanceConfig, RouteGuidance

    g = RouteGuidance(_fresh(graph), GuidanceConfig(period_s=60.0, stale_s=1e9))
    cavs = [f"cav_{k}" for k in range(40)]
    for v in cavs:
        assert g.request(v, "A0A1", "I5I6", 100.0).command
    checks = {v: [] for v in cavs}
    for t in range(101, 701):  # ten periods, nothing changes on the roads
        for d in g.step(float(t)):
            checks[d.vehicle].append(t)
    assert all(len(c) == 10 for c in checks.values())  # not more often for some CAVs, not less for others
    assert all(np.diff(c).min() >= 59 and np.diff(c).max() <= 61 for c in checks.values())
    first = sorted(c[0] for c in checks.values())
    assert first[-1] - first[0] >= 45 and len(set(first)) >= 25  # spread over the period, not all at once


def test_load_aware_guidance_spreads_cavs_over_alternatives(graph):
    from mobility_twin.guidance import GuidanceConfig, RouteGuidance

    def routes(load_aware: bool) -> set:
        g = RouteGuidance(_fresh(graph), GuidanceConfig(load_aware=load_aware, load_alpha=1.0,
                                                          capacity_vps_per_lane=0.01, stale_s=1e9))
        return {g.request(f"cav_{k}", "A0A1", "I5I6", 100.0).edges for k in range(30)}

    assert len(routes(False)) == 1  # everyone down the same fastest route
    assert len(routes(True)) >= 3  # the node's own assignments make the next CAV look elsewhere
