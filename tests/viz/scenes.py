"""Hand-made scenes for the visualisation tests: a small two-site layout with known tracks."""

from __future__ import annotations

import numpy as np

from mobility_twin.viz.builder import SceneBuilder
from mobility_twin.viz.scene import ServerView
from mobility_twin_core import Cav, Cloud, EdgeServer, Layout, Rsu, Site

#: The hand-made layout: two sites side by side, three RSUs, one CAV, two edge servers (the twin model's type).
LAYOUT = Layout(
    rsus=(Rsu("rsu_00", 100.0, 150.0, 6.0, 0.0, "site_0", 60.0), Rsu("rsu_01", 150.0, 150.0, 6.0, 0.0, "site_0", 60.0),
          Rsu("rsu_02", 300.0, 150.0, 6.0, 0.0, "site_1", 60.0)),
    cavs=(Cav("cav_7", 1.9, 50.0),),
    servers=(EdgeServer("edge_0", 100.0, 250.0, 220.0, 1e10, "site_0"),
             EdgeServer("edge_1", 300.0, 250.0, 220.0, 1e10, "site_1")),
    sites=(Site("site_0", ((0.0, 0.0), (200.0, 0.0), (200.0, 300.0), (0.0, 300.0), (0.0, 0.0))),
           Site("site_1", ((200.0, 0.0), (400.0, 0.0), (400.0, 300.0), (200.0, 300.0), (200.0, 0.0)))),
    cloud=Cloud(200.0, 20.0, 3.5e9),
    area=((0.0, 0.0), (400.0, 0.0), (400.0, 300.0), (0.0, 300.0), (0.0, 0.0)),
    origin=(39.9, 116.4),
    name="hand_made",
).validated()
#: The stamp of its Layout message: the scenario start, as the simulator stamps it (s).
LAYOUT_STAMP = 1000.0

#: The same layout as the JSON an older simulator published on /sim/world (what older recordings hold).
LEGACY_WORLD = {
    "scenario": "hand_made", "origin": [116.4, 39.9], "start_s": 1000.0, "end_s": 1600.0,
    "area": [[0.0, 0.0], [400.0, 0.0], [400.0, 300.0], [0.0, 300.0], [0.0, 0.0]],
    "sites": [
        {"id": "site_0", "polygon": [[0.0, 0.0], [200.0, 0.0], [200.0, 300.0], [0.0, 300.0], [0.0, 0.0]]},
        {"id": "site_1", "polygon": [[200.0, 0.0], [400.0, 0.0], [400.0, 300.0], [200.0, 300.0], [200.0, 0.0]]},
    ],
    "rsus": [
        {"id": "rsu_00", "x": 100.0, "y": 150.0, "z": 6.0, "site": "site_0", "frame": "rsu_00/lidar", "range": 60.0},
        {"id": "rsu_01", "x": 150.0, "y": 150.0, "z": 6.0, "site": "site_0", "frame": "rsu_01/lidar", "range": 60.0},
        {"id": "rsu_02", "x": 300.0, "y": 150.0, "z": 6.0, "site": "site_1", "frame": "rsu_02/lidar", "range": 60.0},
    ],
    "cavs": [{"id": "cav_7", "taxi_id": 7, "frame": "cav_7/lidar", "base_frame": "cav_7/base_link", "range": 50.0,
              "lidar_height": 1.9}],
    "edge_servers": [
        {"id": "edge_0", "x": 100.0, "y": 250.0, "radius": 220.0, "cpu_hz": 1e10, "site": "site_0"},
        {"id": "edge_1", "x": 300.0, "y": 250.0, "radius": 220.0, "cpu_hz": 1e10, "site": "site_1"},
    ],
    "cloud": {"x": 200.0, "y": 20.0, "cpu_hz": 3.5e9},
}

#: sources of the hand-made tracks, by track id: RSU only, CAV only, fused, V2X only
SOURCES = {1: ["rsu_00"], 2: ["rsu_00", "rsu_01"], 3: ["cav_7"], 4: ["rsu_01", "cav_7"], 5: ["edge_0"], 6: ["rsu_02"]}


def tracks_at(k: int, ids=tuple(SOURCES)) -> dict:
    """Keyword arguments of SceneBuilder.on_tracks: the tracks ``ids`` at step ``k`` (0.5 s apart)."""
    ids = np.array(ids, dtype=np.int64)
    n = len(ids)
    lane = np.where(ids <= 5, 100.0 + 10.0 * (ids % 3), 150.0)
    x0 = np.where(ids <= 5, 60.0 + 15.0 * ids, 260.0)
    v = np.column_stack([np.full(n, 8.0), np.zeros(n)])
    xy = np.column_stack([x0 + 8.0 * 0.5 * k, lane])
    return {"stamp": 1000.0 + 0.5 * k, "ids": ids, "xy": xy, "v": v, "yaw": np.zeros(n),
            "dims": np.tile([4.5, 1.8, 1.5], (n, 1)), "age": np.linspace(0.0, 1.5, n),
            "sources": [SOURCES[int(i)] for i in ids], "vehicle_ids": [f"veh_{i}" for i in ids]}


def hand_builder(steps: int = 10, ids=tuple(SOURCES)) -> SceneBuilder:
    """A builder fed the layout, ``steps`` track updates, servers, one slot of decisions and a migration."""
    b = SceneBuilder()
    b.on_layout(LAYOUT, stamp=LAYOUT_STAMP)
    for k in range(steps):
        b.on_tracks(**tracks_at(k, ids))
        b.on_ground_truth(1000.0 + 0.5 * k, [101, 102], [[70 + 4.0 * k, 101.0], [90 + 4.0 * k, 121.0]],
                          [[8, 0], [8, 0]], [0.0, 0.0], [[4.5, 1.8, 1.5], [4.5, 1.8, 1.5]])
    stamp = 1000.0 + 0.5 * (steps - 1)
    b.on_servers(stamp, [ServerView("edge_0", 100.0, 250.0, 220.0, 0.35, 4), ServerView("edge_1", 300.0, 250.0, 220.0,
                                                                                            0.9, 2)])
    b.on_decisions(stamp, [(f"veh_{i}", int(i), "edge_0" if i <= 4 else "edge_1") for i in ids])
    b.on_migration(stamp, "group_3", "edge_0", "edge_1")
    b.on_state(stamp, {"rsu_02": True, "rsu_00": False})
    return b
