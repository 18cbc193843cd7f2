"""Synthetic LiDAR: ranges, occlusion, noise, determinism."""

import numpy as np
import pytest

from mobility_twin_sim.lidar import GROUND, Boxes, Lidar, SensorPose
from mobility_twin_sim.scenario import LidarSection

EXACT = LidarSection(channels=16, azimuth_steps=720, vertical_fov_deg=(-15.0, 5.0), max_range_m=100.0,
                     range_noise_m=0.0, dropout=0.0)


def boxes(*specs):
    """specs: (id, x, y, yaw, length, width, height)"""
    arr = np.array(specs, dtype=float).reshape(-1, 7)
    return Boxes(arr[:, 0].astype(int), arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5], arr[:, 6])


def test_box_in_front_returns_points_at_its_range():
    lidar = Lidar(EXACT)
    scan = lidar.scan(SensorPose(0, 0, 1.0, 0.0), boxes((5, 20.0, 0.0, 0.0, 4.0, 2.0, 1.6)), np.random.default_rng(0))
    on_box = scan.points[scan.hit_vehicle == 0]
    assert len(on_box) > 20
    # the face facing the sensor is at x = 18 m
    assert np.min(on_box[:, 0]) == pytest.approx(18.0, abs=1e-3)
    assert np.all(np.abs(on_box[:, 1]) <= 1.0 + 1e-3)
    assert np.all((on_box[:, 2] >= -1.0 - 1e-3) & (on_box[:, 2] <= 0.6 + 1e-3))  # z in the sensor frame


def test_box_hidden_behind_another_returns_no_points():
    lidar = Lidar(EXACT)
    world = boxes((1, 15.0, 0.0, 0.0, 4.0, 2.5, 2.5), (2, 30.0, 0.0, 0.0, 4.0, 1.8, 1.5))
    scan = lidar.scan(SensorPose(0, 0, 1.0, 0.0), world, np.random.default_rng(0))
    assert (scan.hit_vehicle == 0).sum() > 20
    assert (scan.hit_vehicle == 1).sum() == 0
    # remove the front box: the far one is seen
    alone = lidar.scan(SensorPose(0, 0, 1.0, 0.0), boxes((2, 30.0, 0.0, 0.0, 4.0, 1.8, 1.5)), np.random.default_rng(0))
    assert (alone.hit_vehicle == 0).sum() > 5


def test_ground_points_lie_on_the_ground_and_within_range():
    lidar = Lidar(EXACT)
    scan = lidar.scan(SensorPose(3.0, 4.0, 2.0, 0.7), boxes(), np.random.default_rng(0))
    ground = scan.points[scan.hit_vehicle == GROUND]
    assert len(ground) == len(scan)
    assert np.allclose(ground[:, 2], -2.0, atol=1e-3)  # the ground is 2 m below the sensor
    assert np.all(np.linalg.norm(ground, axis=1) <= EXACT.max_range_m + 1e-3)


def test_sensor_yaw_rotates_points_into_the_sensor_frame():
    lidar = Lidar(EXACT)
    world = boxes((1, 0.0, 20.0, 0.0, 4.0, 2.0, 1.6))  # north of the sensor
    scan = lidar.scan(SensorPose(0, 0, 1.0, np.pi / 2), world, np.random.default_rng(0))
    on_box = scan.points[scan.hit_vehicle == 0]
    assert np.median(on_box[:, 0]) == pytest.approx(19.0, abs=0.2)  # straight ahead of a north-facing sensor


def test_excluded_box_does_not_return_points():
    lidar = Lidar(EXACT)
    world = boxes((1, 0.0, 0.0, 0.0, 4.0, 2.0, 1.5), (2, 20.0, 0.0, 0.0, 4.0, 2.0, 1.5))
    scan = lidar.scan(SensorPose(0, 0, 1.9, 0.0), world, np.random.default_rng(0), exclude=0)
    assert (scan.hit_vehicle == 0).sum() == 0 and (scan.hit_vehicle == 1).sum() > 10


def test_same_seed_gives_identical_clouds_and_noise_changes_ranges():
    noisy = LidarSection(channels=16, azimuth_steps=720, range_noise_m=0.05, dropout=0.05)
    lidar = Lidar(noisy)
    world = boxes((1, 15.0, 3.0, 0.3, 4.5, 1.8, 1.5))
    a = lidar.scan(SensorPose(0, 0, 5.0, 0.0), world, np.random.default_rng([7, 1, 3]))
    b = lidar.scan(SensorPose(0, 0, 5.0, 0.0), world, np.random.default_rng([7, 1, 3]))
    c = lidar.scan(SensorPose(0, 0, 5.0, 0.0), world, np.random.default_rng([7, 1, 4]))
    assert np.array_equal(a.points, b.points) and np.array_equal(a.ring, b.ring)
    assert not np.array_equal(a.points, c.points)
    assert len(a) < lidar.rays_per_frame * 0.99  # dropout removed some returns


def test_many_sensors_in_one_call_equal_single_scans():
    lidar = Lidar(EXACT)
    world = boxes((1, 10.0, 0.0, 0.0, 4.0, 2.0, 1.5), (2, -10.0, 5.0, 1.0, 4.0, 2.0, 1.5))
    poses = [SensorPose(0, 0, 5.0, 0.0), SensorPose(5, 5, 5.0, 0.0)]
    many = lidar.scan_many(poses, world, [np.random.default_rng(i) for i in range(2)])
    for i, pose in enumerate(poses):
        single = lidar.scan(pose, world, np.random.default_rng(i))
        assert np.array_equal(many[i].points, single.points)


def test_culled_casting_gives_the_same_cloud_as_casting_every_ray():
    rng = np.random.default_rng(3)
    k = 40
    world = Boxes(np.arange(k), rng.uniform(-60, 60, k), rng.uniform(-60, 60, k), rng.uniform(-np.pi, np.pi, k),
                  rng.uniform(3.5, 12.0, k), rng.uniform(1.6, 2.6, k), rng.uniform(1.3, 3.5, k))
    noisy = LidarSection(channels=32, azimuth_steps=1024, vertical_fov_deg=(-30.0, 5.0), max_range_m=80.0,
                         range_noise_m=0.02, dropout=0.02)
    lidar = Lidar(noisy)
    # an RSU on a pole, a CAV on the roof of box 0 (its own box excluded), one standing over box 1
    poses = [SensorPose(5.0, -3.0, 6.0, 0.4), SensorPose(float(world.x[0]), float(world.y[0]), 4.0, 1.0),
             SensorPose(float(world.x[1]), float(world.y[1]), 5.0, -2.0)]
    exclude = [None, 0, None]
    culled = lidar.scan_many(poses, world, [np.random.default_rng(i) for i in range(3)], exclude)
    every = lidar.scan_many(poses, world, [np.random.default_rng(i) for i in range(3)], exclude, cull=False)
    for a, b in zip(culled, every, strict=True):
        assert (a.hit_vehicle >= 0).sum() > 100  # the sensors do see vehicles
        assert np.array_equal(a.hit_vehicle, b.hit_vehicle)
        assert np.array_equal(a.points, b.points) and np.array_equal(a.ring, b.ring)
    assert (culled[1].hit_vehicle == 0).sum() == 0  # nothing returned from the CAV's own box
