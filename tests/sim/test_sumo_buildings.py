"""Buildings for the LiDAR: city blocks between the roads, prisms in the ray caster, occlusion and clutter."""

import numpy as np
import pytest
from shapely.geometry import Point, box

pytest.importorskip("libsumo")

from mobility_twin_sim.lidar import GROUND, STRUCTURE, Boxes, Lidar, SensorPose, Structures
from mobility_twin_sim.scenario import LidarSection
from mobility_twin_sim.sumo import build_beijing_cbd
from mobility_twin_sim.sumo.buildings import BuildingRules, buildings_on_blocks, city_blocks

EXACT = LidarSection(channels=16, azimuth_steps=720, vertical_fov_deg=(-15.0, 5.0), max_range_m=100.0,
                     range_noise_m=0.0, dropout=0.0)


pytestmark = pytest.mark.usefixtures("sumo_cache")  # a SUMO cache of this module's own (conftest)


@pytest.fixture(scope="module")
def cbd_blocks():
    net = build_beijing_cbd()
    return net, city_blocks(net.net_file, net.frame)


def car(i, x, y, yaw=0.0):
    return (i, x, y, yaw, 4.6, 1.8, 1.5)


def boxes(*specs):
    arr = np.array(specs, dtype=float).reshape(-1, 7)
    return Boxes(arr[:, 0].astype(int), arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5], arr[:, 6])


def test_city_blocks_lie_between_the_roads(cbd_blocks):
    _, blocks = cbd_blocks
    assert len(blocks) == 12 * 12  # a 13 x 13 grid of streets encloses 12 x 12 blocks
    # no block covers a street: the grid lines (every 225 m in map) stay free
    for b in blocks:
        assert not b.intersects(box(-1400, -3, 1400, 3))  # the avenue along y = 0
    assert all(150 * 150 < b.area < 225 * 225 for b in blocks)
    # a block sits in the middle of each cell
    assert any(b.contains(Point(112.5, 112.5)) for b in blocks)


def test_a_building_hides_a_car_behind_it_and_returns_points_of_its_own():
    building = Structures.from_polygons([box(10.0, -10.0, 20.0, 10.0)], [20.0], ["tower"])
    world = boxes(car(7, 26.0, 0.0), car(8, 0.0, 15.0))  # one behind the tower, one in the open
    sensor = SensorPose(0.0, 0.0, 2.0, 0.0)
    plain = Lidar(EXACT).scan(sensor, world, np.random.default_rng(0))
    occluded = Lidar(EXACT, building).scan(sensor, world, np.random.default_rng(0))
    assert (plain.hit_vehicle == 0).sum() > 10  # without buildings the far car is seen
    assert (occluded.hit_vehicle == 0).sum() == 0  # behind the tower it is not
    assert (occluded.hit_vehicle == 1).sum() == (plain.hit_vehicle == 1).sum() > 10
    wall = occluded.points[occluded.hit_vehicle == STRUCTURE]
    assert len(wall) > 50 and np.min(wall[:, 0]) == pytest.approx(10.0, abs=1e-3)  # the facade at x = 10 m


def test_culling_with_buildings_gives_the_same_cloud_as_casting_every_ray(cbd_blocks):
    _, blocks = cbd_blocks
    near = [b for b in blocks if b.distance(Point(0.0, 0.0)) < 200]
    structures = buildings_on_blocks(near, BuildingRules(seed=3))
    rng = np.random.default_rng(5)
    k = 30
    # vehicles on the streets around the junction at the origin
    along = rng.uniform(-150, 150, k)
    side = rng.choice([-6.0, 6.0], k)
    horizontal = rng.random(k) < 0.5
    x = np.where(horizontal, along, side)
    y = np.where(horizontal, side, along)
    world = Boxes(np.arange(k), x, y, np.where(horizontal, 0.0, np.pi / 2), np.full(k, 4.6), np.full(k, 1.8),
                  np.full(k, 1.5))
    cfg = LidarSection(channels=32, azimuth_steps=1024, vertical_fov_deg=(-40.0, 2.0), max_range_m=80.0,
                       range_noise_m=0.02, dropout=0.01)
    lidar = Lidar(cfg, structures)
    poses = [SensorPose(0.0, 0.0, 6.0, 0.0), SensorPose(float(x[0]), float(y[0]), 1.9, float(world.yaw[0]))]
    culled = lidar.scan_many(poses, world, [np.random.default_rng(i) for i in range(2)], [None, 0])
    every = lidar.scan_many(poses, world, [np.random.default_rng(i) for i in range(2)], [None, 0], cull=False)
    for a, b in zip(culled, every, strict=True):
        assert np.array_equal(a.hit_vehicle, b.hit_vehicle) and np.array_equal(a.points, b.points)
        assert (a.hit_vehicle == STRUCTURE).sum() > 100 and (a.hit_vehicle == GROUND).sum() > 100
    assert (culled[0].hit_vehicle >= 0).sum() > 50  # the RSU still sees the cars in the streets
    # the RSU's view of the buildings is cast once and remembered
    assert lidar.static_ranges(poses[0]) is lidar.static_ranges(poses[0])


def test_buildings_are_deterministic_and_within_the_blocks(cbd_blocks):
    _, blocks = cbd_blocks
    a = buildings_on_blocks(blocks[:10], BuildingRules(seed=1))
    b = buildings_on_blocks(blocks[:10], BuildingRules(seed=1))
    assert np.array_equal(a.heights, b.heights) and len(a) > 10
    assert np.all((a.heights >= 12.0) & (a.heights <= 90.0))
    footprint_area = sum(box(*np.r_[f.min(0), f.max(0)]).area for f in a.footprints)
    assert footprint_area <= sum(bl.area for bl in blocks[:10]) * 1.01
    vertices, triangles = a.mesh()
    assert vertices.shape[1] == 3 and triangles.max() < len(vertices)
