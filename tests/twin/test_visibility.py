"""What a LiDAR frame saw of the space (perception.visibility), on real ray-cast clouds, and what the tracker does
with it: a vehicle gone from plain view is dropped at once, one hidden behind a building coasts through."""

from dataclasses import replace

import numpy as np
import pytest
from shapely.geometry import box

from mobility_twin.perception import SOURCE_RSU, DetectorConfig, LidarDetector, SensorPose2D
from mobility_twin.perception.visibility import CLEAR, HIDDEN, UNKNOWN, Visibility
from mobility_twin.tracking import MultiSourceTracker, TrackerConfig
from mobility_twin_sim.lidar import Boxes, Lidar, SensorPose, Structures
from mobility_twin_sim.scenario import LidarSection

POLE = SensorPose(0.0, 0.0, 6.0, 0.0)
SENSOR = SensorPose2D(0.0, 0.0, 6.0, 0.0)
WALL = box(-6.0, -12.0, 6.0, -10.0)  # a building 10-12 m south of the pole, 12 m wide: the road behind it is hidden


def _lidar(building: bool = True) -> Lidar:
    section = LidarSection(channels=32, azimuth_steps=1024, vertical_fov_deg=(-25.0, 3.0), range_noise_m=0.02,
                           dropout=0.01)
    return Lidar(section, Structures.from_polygons([WALL], [8.0]) if building else None)


def _cars(*cars) -> Boxes:
    """Boxes of cars (x, y, yaw), 4.6 x 1.8 x 1.5 m."""
    k = len(cars)
    xs, ys, yaws = (np.array([c[i] for c in cars], dtype=float) for i in range(3))
    return Boxes(np.arange(1, k + 1), xs, ys, yaws, np.full(k, 4.6), np.full(k, 1.8), np.full(k, 1.5))


def _detect(lidar: Lidar, cars: Boxes, seed: int, stamp: float, detector: LidarDetector):
    scan = lidar.scan(POLE, cars, np.random.default_rng(seed))
    return detector.detect(scan.points, SENSOR, source_id="rsu_00", source_type=SOURCE_RSU, stamp=stamp)


def test_a_frame_tells_a_vehicle_there_from_clear_space_and_from_a_place_hidden_by_a_building():
    det = _detect(_lidar(), _cars((25.0, 10.0, 0.3)), 0, 0.0, LidarDetector())
    seen = det.visibility
    assert seen is not None and seen.bins == 360 and seen.cells == 80
    places = np.array([[25.0, 10.0],  # the car: something stands there
                       [10.0, 25.0], [-30.0, 5.0], [40.0, -30.0],  # open road at 27-50 m: seen clear
                       [0.0, -20.0], [4.0, -30.0],  # behind the building
                       [0.0, 95.0]])  # beyond the sensor's reach: unknown
    assert seen.classify(places, (0.0, 0.0)).tolist() == [HIDDEN, CLEAR, CLEAR, CLEAR, HIDDEN, HIDDEN, UNKNOWN]


def test_no_vehicle_of_a_busy_frame_stands_in_space_the_frame_calls_clear():
    rng = np.random.default_rng(5)
    k = 40
    cars = Boxes(np.arange(1, k + 1), rng.uniform(-60, 60, k), rng.uniform(-60, 60, k), rng.uniform(-np.pi, np.pi, k),
                 rng.uniform(3.8, 5.2, k), rng.uniform(1.6, 2.0, k), rng.uniform(1.35, 1.7, k))
    det = _detect(_lidar(), cars, 1, 0.0, LidarDetector())
    centres = np.column_stack([cars.x, cars.y])
    assert not np.any(det.visibility.classify(centres, (0.0, 0.0)) == CLEAR)
    assert np.mean(det.visibility.classify(rng.uniform(-60, 60, (500, 2)), (0.0, 0.0)) == CLEAR) > 0.4


def test_the_wire_form_round_trips_and_a_malformed_one_is_a_clear_error():
    det = _detect(_lidar(), _cars((25.0, 10.0, 0.3)), 0, 0.0, LidarDetector())
    back = Visibility.unpacked(*det.visibility.packed())
    places = np.random.default_rng(2).uniform(-70, 70, (300, 2))
    assert np.array_equal(back.classify(places, (0.0, 0.0)), det.visibility.classify(places, (0.0, 0.0)))
    assert Visibility.unpacked(0, 1.0, np.zeros(0, np.uint8), np.zeros(0, np.float32)) is None
    bins, cell, bits, blocked = det.visibility.packed()
    with pytest.raises(ValueError, match="not a visibility grid"):
        Visibility.unpacked(bins, cell, bits[:-3], blocked)
    with pytest.raises(ValueError, match="not a visibility grid"):
        Visibility.unpacked(bins, 0.0, bits, blocked)


def test_a_malformed_visibility_on_the_wire_is_a_cdr_error():
    from mobility_twin.ros.cdr import CdrError, decode_detections, encode_detections
    from mobility_twin.ros.tables import detections_to_table, table_to_detections

    det = _detect(_lidar(), _cars((25.0, 10.0, 0.3)), 0, 0.0, LidarDetector())
    table = detections_to_table(det, 6.0)
    back = table_to_detections(decode_detections(encode_detections(table)))
    assert np.array_equal(back.visibility.clear_bits, det.visibility.clear_bits)
    bins, cell, bits, blocked = table.visibility
    table.visibility = (bins, cell, bits[:-1], blocked)
    with pytest.raises(CdrError, match="not a grid"):
        decode_detections(encode_detections(table))


def _track_through(cars_at, frames: int, visibility: bool, building: bool = True) -> list[list[int]]:
    """The ids the RSU-alone tracker publishes after each frame of a pole LiDAR's real scans of ``cars_at(t)``
    (10 Hz), with the detector's visibility sent with its detections or not."""
    lidar = _lidar(building)
    config = DetectorConfig() if visibility else replace(DetectorConfig(), visibility_bins=0)
    detector, tracker = LidarDetector(config), MultiSourceTracker(TrackerConfig())
    out = []
    for k in range(frames):
        t = 0.1 * k
        det = _detect(lidar, cars_at(t), k, t, detector)
        assert (det.visibility is not None) == visibility
        tracker.update(det)
        out.append(tracker.confirmed_at(t).ids.tolist())
    return out


def test_a_car_whose_trace_ends_in_plain_view_is_dropped_at_once():
    """A parked car 27 m from the pole, in plain view, leaves the scene at 2 s (its trace ends). The frames after
    see its place clear: its track is published in none of them. Without the visibility, the tracker can
    only count misses, and a run of misses could be a vehicle hidden by what the detector did not report: it
    publishes the track for two frames more."""
    def cars_at(t):
        return _cars((25.0, 10.0, 0.3)) if t < 2.0 - 1e-9 else _cars()

    with_vis = _track_through(cars_at, 30, visibility=True, building=False)
    without = _track_through(cars_at, 30, visibility=False, building=False)
    assert with_vis[19] == without[19] == [1]  # tracked while there
    assert all(ids == [] for ids in with_vis[20:])
    assert sum(ids == [1] for ids in without[20:]) >= 2


def test_a_car_hidden_behind_a_building_for_longer_than_max_coast_is_published_through_it():
    """A car drives at 10 m/s along a road 20 m from the pole, behind a building that hides it for about 2.4 s
    (longer than max_coast_s). Each frame sees its place hidden: it counts no miss and is published all the
    way through, under one id. Without the visibility the tracker gives up on it after max_coast_s."""
    def cars_at(t):
        return _cars((-30.0 + 10.0 * t, -20.0, 0.0))

    hidden = [k for k in range(60) if abs(-30.0 + 1.0 * k) < 11.0]  # behind the building: x in (-11, 11)
    with_vis = _track_through(cars_at, 60, visibility=True)
    without = _track_through(cars_at, 60, visibility=False)
    assert len(hidden) > 10 * TrackerConfig().max_coast_s
    assert with_vis[hidden[0] - 1] == [1] and all(with_vis[k] == [1] for k in hidden) and with_vis[-1] == [1]
    assert any(without[k] == [] for k in hidden)
