"""The twin model: enumerations against the interfaces, the association rule, layout validation."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from mobility_twin_core import Cav, EdgeServer, Layout, LayoutError, Rsu, ServerSet, Site
from mobility_twin_core.layout_io import layout_from_dict, layout_to_dict, load_layout
from mobility_twin_core.model import EntityKind, ObjectClass, SourceType, TrackState

SQUARE = ((0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0))


def _constants(msg_class, prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: getattr(msg_class, k) for k in dir(msg_class) if k.startswith(prefix) and k.isupper()}


def test_enumerations_match_the_message_constants():
    msg = pytest.importorskip("mobility_twin_msgs.msg")
    for enum, msg_class, prefix in ((ObjectClass, msg.DetectedObject, "CLASS_"), (EntityKind, msg.TwinEntity, "KIND_"),
                                    (TrackState, msg.TrackedObject, "STATE_"),
                                    (SourceType, msg.DetectedObjectArray, "SOURCE_")):
        assert {e.name: int(e) for e in enum} == _constants(msg_class, prefix), enum.__name__


def _brute_force_serving(xy, servers):
    out = []
    for x, y in xy:
        best, best_d = -1, math.inf
        for k, s in enumerate(servers):
            d = math.hypot(x - s.x, y - s.y)
            if d <= s.coverage_radius_m and d < best_d:
                best, best_d = k, d
        out.append(best)
    return np.array(out)


def test_the_serving_server_is_the_nearest_whose_disc_holds_the_vehicle():
    rng = np.random.default_rng(3)
    servers = [EdgeServer(f"edge_{i}", float(x), float(y), float(r), 3e9)
               for i, (x, y, r) in enumerate(zip(rng.uniform(0, 1000, 30), rng.uniform(0, 1000, 30),
                                                 rng.uniform(50, 250, 30), strict=True))]
    xy = rng.uniform(-100, 1100, size=(2000, 2))
    got = ServerSet(servers).serving(xy)
    assert np.array_equal(got, _brute_force_serving(xy, servers))
    assert (got == -1).any() and (got >= 0).any()


def test_a_set_asked_often_answers_from_its_table_as_the_rule_does():
    rng = np.random.default_rng(5)
    for n, radii in ((30, rng.uniform(50, 250, 30)), (12, np.full(12, 200.0)), (1, np.full(1, 120.0))):
        servers = [EdgeServer(f"edge_{i}", float(x), float(y), float(r), 3e9)
                   for i, (x, y, r) in enumerate(zip(rng.uniform(0, 1000, n), rng.uniform(0, 1000, n), radii, strict=True))]
        index = ServerSet(servers)
        table = index._table
        index.serving(np.zeros((table.cells, 2)))  # as many points as the table has cells: now it is filled
        assert table.table is not None and (table.table >= 0).any() and (table.table == -1).any()
        corners = table.lo + rng.integers(0, 40, size=(500, 2)) * table.cell  # on cell borders
        xy = np.concatenate([rng.uniform(-400, 1400, size=(3000, 2)), corners, index.xy])
        got = index.serving(xy)
        assert np.array_equal(got, index._serving_tree(xy)) and np.array_equal(got, _brute_force_serving(xy, servers))
    ties = ServerSet([EdgeServer("a", 0.0, 0.0, 200.0, 1e9), EdgeServer("b", 100.0, 0.0, 200.0, 1e9)])
    ties.serving(np.zeros((ties._table.cells, 2)))
    assert ties.serving(np.array([[50.0, 0.0], [50.0, 7.0], [1000.0, 0.0]])).tolist() == [0, 0, -1]


def test_a_server_set_keeps_its_own_frozen_copy_of_the_positions():
    xy = np.array([[0.0, 0.0], [500.0, 0.0]])
    index = ServerSet.from_arrays(["a", "b"], xy, 200.0)
    xy[0] = 400.0  # the caller's array is still the caller's
    assert index.serving(np.array([[10.0, 0.0]])).tolist() == [0]
    with pytest.raises(ValueError):
        index.xy[0, 0] = 1.0
    with pytest.raises(ValueError):  # a copy too (the bench sends server sets to other processes)
        pickle.loads(pickle.dumps(index)).coverage_m[0] = 1.0


def test_ties_go_to_the_lower_index_and_uncovered_vehicles_to_none():
    servers = ServerSet([EdgeServer("a", 0.0, 0.0, 200.0, 1e9), EdgeServer("b", 100.0, 0.0, 200.0, 1e9)])
    assert servers.serving(np.array([[50.0, 0.0], [1000.0, 0.0]])).tolist() == [0, -1]
    assert servers.served_counts(np.array([[50.0, 0.0], [90.0, 0.0], [99.0, 1.0]])).tolist() == [1, 2]


def test_a_layout_round_trips_through_plain_data(tmp_path):
    layout = Layout(rsus=(Rsu("rsu_0", 10.0, 20.0, 6.0, 0.5, "site_0", 70.0),), cavs=(Cav("cav_1", 1.9),),
                    servers=(EdgeServer("edge_0", 50.0, 50.0, 150.0, 3e9, "site_0"),), sites=(Site("site_0", SQUARE),),
                    area=SQUARE, origin=(39.9, 116.4), name="pilot").validated()
    back = layout_from_dict(layout_to_dict(layout))
    assert back == layout
    path = tmp_path / "layout.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"layout": layout_to_dict(layout)}))
    assert load_layout(path) == layout


@pytest.mark.parametrize(("patch", "message"), [
    ({"rsus": [{"id": "rsu_0", "x": 1.0, "y": 2.0, "range_m": -5.0, "site": "site_0"}]}, r"rsus.*range_m must be > 0"),
    ({"edge_servers": [{"id": "e", "x": 1.0, "y": 2.0, "coverage_radius_m": 0.0, "cpu_hz": 1e9, "site": "site_0"}]},
     r"coverage_radius_m must be > 0"),
    ({"edge_servers": [{"id": "e", "x": 1.0, "y": 2.0, "coverage_radius_m": 10.0, "cpu_hz": float("nan"),
                        "site": "site_0"}]}, r"cpu_hz: expected a number, got NaN"),
    ({"rsus": [{"id": "r", "x": 1.0, "y": 2.0, "site": "site_0"}, {"id": "r", "x": 1.0, "y": 2.0, "site": "site_0"}]},
     r"id 'r' appears twice"),
    ({"rsus": [{"id": "r", "x": 1.0, "y": 2.0, "site": "elsewhere"}]}, r"site_id 'elsewhere' is not a site"),
    ({"rsus": [{"id": "r", "x": "east", "y": 2.0}]}, r"rsus\[0\].x: expected a number"),
    ({"radar": []}, r"unknown key\(s\) \['radar'\]"),
])
def test_a_bad_layout_is_refused_naming_the_key(patch, message):
    data = {"sites": [{"id": "site_0", "polygon": [list(p) for p in SQUARE]}], **patch}
    with pytest.raises(LayoutError, match=message):
        layout_from_dict(data)


def test_a_missing_layout_file_is_named(tmp_path):
    with pytest.raises(LayoutError, match=r"cannot read layout file .*nowhere\.yaml"):
        load_layout(tmp_path / "nowhere.yaml")
