"""rsu_perception and cav_perception: LiDAR clouds to DetectedObjectArray in `map`.

rsu_perception (one per RSU): subscribes ``points`` (PointCloud2 in the RSU's LiDAR frame), publishes
``detections``. The extrinsic (LiDAR pose in `map`) is the parameter ``extrinsic``; it may instead come from
the deployment's layout (``layout_file``, or the latched /infrastructure/layout with
``calibration_from_layout``). Without either the node stops at once, naming the parameter to set.

cav_perception (one per CAV): subscribes ``points`` and ``odom`` (nav_msgs/Odometry, map -> base_link);
the LiDAR pose at the cloud's stamp is the odometry interpolated to that stamp composed with the mount
(``lidar_height_m`` above base_link, or the layout's, as for the RSU's extrinsic). Each frame also carries the vehicle's own state as a
high-confidence self-report, as cooperative-awareness messages do.

Bad input is counted and logged, never fatal: NaN/inf points (dropped by the detector), empty clouds,
clouds in an unexpected frame, unreadable clouds, clouds without odometry at their stamp.
"""

from __future__ import annotations

import bisect
import importlib
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2

from mobility_twin.perception import SOURCE_CAV, SOURCE_RSU, DetectorConfig, LidarDetector, SensorPose2D
from mobility_twin.perception.detections import Detections
from mobility_twin.perception.frame_gaps import FrameGaps
from mobility_twin.perception.lidar_detector import load_backend
from mobility_twin.perception.reports import self_report
from mobility_twin.ros.cdr import CdrError, decode_cloud_xyz, encode_detections
from mobility_twin.ros.convert import from_time, quaternion_yaw
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import guarded
from mobility_twin.ros.node_params import LayoutFileParams
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import NEWEST_FRAME, SENSOR_STREAM, TWIN_STATE
from mobility_twin.ros.tables import detections_to_table
from mobility_twin_core import Layout, LayoutError
from mobility_twin_msgs.msg import DetectedObjectArray


@dataclass(frozen=True)
class PerceptionConfig(LayoutFileParams):
    sensor_id: str = field("", "the sensor's id: source_id of its detections (required)")
    frame_id: str = field("", "expected frame of the clouds ('' = <sensor_id>/lidar); others are counted, skipped")
    extrinsic: tuple[float, ...] = field([], "RSU: LiDAR pose in map x, y, z, yaw (m, rad); CAV: unused")
    lidar_height_m: float = field(math.nan, "CAV: LiDAR height above base_link (m); NaN: not given")
    layout_file: str = field("", "take a missing extrinsic / LiDAR height from this layout.yaml ('' = none)")
    calibration_from_layout: bool = field(False, "take a missing extrinsic / LiDAR height from the latched "
                                                 "/infrastructure/layout")
    max_range_m: float = field(80.0, "detector: farthest point used (m); also the coverage announced", low=1.0,
                               high=1000.0)
    ground_height_m: float = field(0.3, "detector: points at most this high above the ground are ground (m)",
                                   low=-5.0, high=5.0)
    fit_ground_plane: bool = field(False, "detector: fit the ground with RANSAC (uneven roads)")
    voxel_m: float = field(0.2, "detector: voxel size of the downsampling (m)", low=0.01, high=5.0)
    cluster_eps_m: float = field(0.8, "detector: DBSCAN radius (m)", low=0.05, high=10.0)
    visibility_bins: int = field(360, "detector: bearing bins of what each frame saw of the space, sent with its "
                                      "detections (3.6 kB a frame at 360; 0: not sent)", low=0, high=3600)
    odometry_buffer_s: float = field(2.0, "CAV: odometry kept for interpolation (s)", low=0.1, high=60.0)
    stats_period_s: float = field(10.0, "seconds between statistics lines in the log", low=0.1, high=86400.0)

    def check(self) -> None:
        if not self.sensor_id:
            raise ValueError("parameter 'sensor_id' is required")


@dataclass(frozen=True)
class RsuPerceptionConfig(PerceptionConfig):
    CONFIG_FILE = "config/rsu_perception.yaml"


@dataclass(frozen=True)
class CavPerceptionConfig(PerceptionConfig):
    CONFIG_FILE = "config/cav_perception.yaml"


class _PerceptionBase(Node):
    kind = SOURCE_RSU
    config_class: type = PerceptionConfig

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.config = declare_config(self, self.config_class)
        cfg = self.config
        self.exit_code: int | None = None
        self.frame_id = cfg.frame_id or f"{cfg.sensor_id}/lidar"
        self.detector = LidarDetector(DetectorConfig(
            max_range_m=cfg.max_range_m, ground_height_m=cfg.ground_height_m, fit_ground_plane=cfg.fit_ground_plane,
            voxel_m=cfg.voxel_m, cluster_eps_m=cfg.cluster_eps_m, visibility_bins=cfg.visibility_bins))
        self.counts: Counter = Counter()
        self.latency_ms: deque = deque(maxlen=1000)
        self.pub = self.create_publisher(DetectedObjectArray, "detections", TWIN_STATE)
        self.gaps = FrameGaps()  # the clouds never taken: replaced while the node was busy, or never sent
        self.create_subscription(PointCloud2, "points", guarded(self, self.counts, "cloud")(self.on_cloud), NEWEST_FRAME,
                                 raw=True)
        self.create_timer(cfg.stats_period_s, self.log_stats)
        self._preloading: threading.Thread | None = None  # started once the node is built (it may yet fail)
        self._preload_timer = self.create_timer(0.01, self._start_preload, clock=Clock(clock_type=ClockType.STEADY_TIME))

    #: modules the first frame needs besides the detector's (imported in the background, as the detector's are)
    first_frame_modules: tuple[str, ...] = ()

    def _start_preload(self) -> None:
        self._preload_timer.cancel()
        if self._preloading is None:
            self._preloading = threading.Thread(target=self._preload, name="preload", daemon=True)
            self._preloading.start()

    def close(self) -> None:
        """Called by run_node before the node is destroyed: an import is not left running into the interpreter's exit."""
        if self._preloading is not None:
            self._preloading.join()

    def _preload(self) -> None:
        """Import what the first frame needs (open3d, ...) while the node connects: imported before, it would delay
        the node's start; at the first frame, its first output. A failure is left to the first frame to report."""
        try:
            load_backend()
            for module in self.first_frame_modules:
                importlib.import_module(module)
        except Exception as err:  # reported again, with its traceback, where it is used
            self.get_logger().warning(f"preloading the detector failed: {err!r}")

    def _calibrate_from_layout(self, missing: str, example: str) -> None:
        """Take the calibration the parameters lack from the layout, or stop naming the parameter."""
        cfg = self.config
        if not (cfg.layout_file or cfg.calibration_from_layout):
            raise ConfigurationError(
                f"parameter '{missing}' is required: set it in {cfg.CONFIG_FILE} or as the launch argument "
                f"{example} (or give 'layout_file', or 'calibration_from_layout: true' where the layout is published)")
        self.layout = cfg.layout_source(self, self.on_layout, from_topic=cfg.calibration_from_layout)

    def on_layout(self, layout: Layout) -> None:
        """The deployment's calibration of this sensor."""

    def on_cloud(self, data: bytes) -> None:
        received = time.time()
        self.counts["clouds"] += 1
        try:
            cloud = decode_cloud_xyz(data)
        except CdrError as err:
            self.counts["unreadable"] += 1
            self.get_logger().warning(f"unreadable cloud: {err}", throttle_duration_sec=5.0)
            return
        if cloud.frame_id != self.frame_id:
            self.counts["wrong_frame"] += 1
            self.get_logger().warning(f"cloud in frame {cloud.frame_id!r}, expected {self.frame_id!r}: skipped",
                                      throttle_duration_sec=5.0)
            return
        stamp = cloud.stamp
        self.gaps.add(stamp)
        pose = self.sensor_pose(stamp)
        if pose is None:
            return
        points = cloud.xyz
        if len(points) == 0:
            self.counts["empty"] += 1
        before_invalid = self.detector.stats.points_invalid
        det = self.detector.detect(points, pose, source_id=self.config.sensor_id, source_type=self.kind, stamp=stamp,
                                   provenance=(("received", received),))
        if self.detector.stats.points_invalid > before_invalid:
            self.counts["clouds_with_invalid_points"] += 1
        det = self.add_self_report(det, stamp)
        done = time.time()
        det = det.with_stage("perception", done)
        self.pub.publish(encode_detections(detections_to_table(det, pose.z, pose.yaw)))
        self.counts["detections"] += len(det)
        self.latency_ms.append(1000.0 * (done - received))

    def sensor_pose(self, stamp: float) -> SensorPose2D | None:
        raise NotImplementedError

    def add_self_report(self, det: Detections, stamp: float) -> Detections:
        return det

    def log_stats(self) -> None:
        if not self.counts["clouds"]:
            self.get_logger().info("no cloud received yet", throttle_duration_sec=30.0)
            return
        lat = sorted(self.latency_ms)
        p50 = lat[len(lat) // 2] if lat else float("nan")
        st = self.detector.stats
        self.get_logger().info(
            f"clouds {self.counts['clouds']}, detections {self.counts['detections']}, processing p50 {p50:.1f} ms; "
            f"skipped: wrong frame {self.counts['wrong_frame']}, no pose {self.counts['no_pose']}, unreadable "
            f"{self.counts['unreadable']}, empty {self.counts['empty']}; invalid points {st.points_invalid}; "
            f"missing (never taken: replaced while busy, or not sent) {self.gaps.missing}, out of order "
            f"{self.gaps.out_of_order}"
        )


class RsuPerception(_PerceptionBase):
    kind = SOURCE_RSU
    config_class = RsuPerceptionConfig

    def __init__(self, **kwargs) -> None:
        super().__init__("rsu_perception", **kwargs)
        e = self.config.extrinsic
        if e and (len(e) != 4 or not all(math.isfinite(v) for v in e)):
            raise ConfigurationError(f"parameter 'extrinsic': expected 4 finite numbers x, y, z, yaw, got {list(e)} "
                                     f"(set it in {self.config.CONFIG_FILE} or as a launch argument)")
        self.pose = SensorPose2D(*e) if e else None
        if self.pose is None:
            self._calibrate_from_layout("extrinsic", "extrinsic:=x,y,z,yaw")

    def on_layout(self, layout: Layout) -> None:
        try:
            rsu = layout.rsu(self.config.sensor_id)
        except LayoutError as err:
            self.get_logger().fatal(f"parameter 'sensor_id': {err}")
            self.exit_code = 2
            return
        self.pose = SensorPose2D(*rsu.extrinsic)
        self.get_logger().info(f"extrinsic from the layout: {self.pose}")

    def sensor_pose(self, stamp: float) -> SensorPose2D | None:
        if self.pose is None:
            self.counts["no_pose"] += 1
            self.get_logger().warning("no extrinsic yet: cloud skipped", throttle_duration_sec=5.0)
        return self.pose


class CavPerception(_PerceptionBase):
    kind = SOURCE_CAV
    config_class = CavPerceptionConfig
    first_frame_modules = ("mobility_twin.tracking.trackset",)  # the self-report's

    def __init__(self, **kwargs) -> None:
        super().__init__("cav_perception", **kwargs)
        self.lidar_height = self.config.lidar_height_m
        self.odometry: deque = deque()  # (stamp, x, y, yaw, speed, yaw_rate, sigma_xy)
        self.create_subscription(Odometry, "odom", guarded(self, self.counts, "odometry")(self.on_odometry), SENSOR_STREAM)
        if not math.isfinite(self.lidar_height):
            self._calibrate_from_layout("lidar_height_m", "lidar_height_m:=1.9")

    def on_layout(self, layout: Layout) -> None:
        try:
            height = layout.cav(self.config.sensor_id).lidar_height_m
        except LayoutError as err:
            self.get_logger().fatal(f"parameter 'sensor_id': {err}")
            self.exit_code = 2
            return
        if not math.isfinite(height):
            self.get_logger().fatal(f"the layout gives no lidar_height_m for {self.config.sensor_id}: set parameter "
                                    f"'lidar_height_m' in {self.config.CONFIG_FILE}")
            self.exit_code = 2
            return
        self.lidar_height = float(height)

    def on_odometry(self, msg: Odometry) -> None:
        stamp = from_time(msg.header.stamp)
        p = msg.pose.pose
        sample = (stamp, p.position.x, p.position.y, quaternion_yaw(p.orientation), msg.twist.twist.linear.x,
                  msg.twist.twist.angular.z, math.sqrt(max(msg.pose.covariance[0], 1e-6)))
        if not all(math.isfinite(v) for v in sample):
            self.counts["odometry_not_finite"] += 1
            self.get_logger().warning("odometry with a value that is not finite: skipped", throttle_duration_sec=5.0)
            return
        if self.odometry and stamp <= self.odometry[-1][0]:
            self.counts["odometry_out_of_order"] += 1
            return
        self.odometry.append(sample)
        while self.odometry and self.odometry[0][0] < stamp - self.config.odometry_buffer_s:
            self.odometry.popleft()

    def _odometry_at(self, stamp: float):
        if not self.odometry or stamp < self.odometry[0][0] - 0.05 or stamp > self.odometry[-1][0] + 0.2:
            return None
        times = [o[0] for o in self.odometry]
        i = bisect.bisect_left(times, stamp)
        if i == 0:
            return self.odometry[0]
        if i >= len(times):  # extrapolate the newest sample a little, at its speed
            o = self.odometry[-1]
            dt = stamp - o[0]
            return (stamp, o[1] + o[4] * math.cos(o[3]) * dt, o[2] + o[4] * math.sin(o[3]) * dt, o[3], o[4], o[5], o[6])
        a, b = self.odometry[i - 1], self.odometry[i]
        w = (stamp - a[0]) / (b[0] - a[0])
        yaw = a[3] + w * math.atan2(math.sin(b[3] - a[3]), math.cos(b[3] - a[3]))
        return (stamp, a[1] + w * (b[1] - a[1]), a[2] + w * (b[2] - a[2]), yaw, a[4] + w * (b[4] - a[4]), b[5], b[6])

    def sensor_pose(self, stamp: float) -> SensorPose2D | None:
        odo = self._odometry_at(stamp)
        if odo is None or not math.isfinite(self.lidar_height):
            self.counts["no_pose"] += 1
            self.get_logger().warning("no odometry (or LiDAR height) at the cloud's stamp: skipped",
                                      throttle_duration_sec=5.0)
            return None
        self._self_state = odo
        return SensorPose2D(odo[1], odo[2], self.lidar_height, odo[3])

    def add_self_report(self, det: Detections, stamp: float) -> Detections:
        _, x, y, yaw, speed, _, sigma = self._self_state
        return self_report(det, self.config.sensor_id, x, y, yaw, speed, sigma)


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"rsu_main": RsuPerceptionConfig, "cav_main": CavPerceptionConfig}


def rsu_main() -> int:
    return run_node(RsuPerception)


def cav_main() -> int:
    return run_node(CavPerception)
