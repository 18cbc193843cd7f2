"""The guidance benchmark's oracle: time-dependent fastest routes on recorded road times (real network)."""

import math

import numpy as np
import pytest

pytest.importorskip("sumolib")


def test_the_oracle_is_never_slower_than_a_driven_route_and_avoids_a_closure():
    from mobility_twin.guidance import RoadGraph, Router
    from mobility_twin_bench.guidance import Case, recorded_times, td_cost, td_fastest
    from mobility_twin_sim.sumo import load_network

    graph = RoadGraph.from_net_file(load_network("beijing_cbd").net_file)
    case = Case("t", incident_at_s=600.0, incident_s=300.0, end_s=1200.0)
    route, _ = Router(graph).route(graph.index["A0A1"], graph.index["I5I6"])
    # every road of the free-flow route is three times slower from 500 s on (a jam the oracle can avoid)
    passes = [(e, 500.0 + 10 * k, 500.0 + 10 * k + 3 * graph.free_flow_s[e]) for k in range(20) for e in route]
    closed = route[len(route) // 2]
    tt = recorded_times(passes, graph, case, closed)
    assert tt.shape == (math.ceil(case.end_s / 60.0) + 1, len(graph))
    assert np.isinf(tt[10, closed]) and np.isfinite(tt[16, closed])  # closed 600-900 s only
    assert tt[8, route[1]] == pytest.approx(3 * graph.free_flow_s[route[1]])
    before = td_fastest(tt, graph, route[0], route[-1], 0.0)
    assert before == pytest.approx(td_cost(tt, route[1:], 0.0))  # nothing recorded yet: free flow, same route
    during = td_fastest(tt, graph, route[0], route[-1], 600.0)
    assert math.isinf(td_cost(tt, route[1:], 600.0))  # its own route is closed
    assert math.isfinite(during) and during < 3 * before
