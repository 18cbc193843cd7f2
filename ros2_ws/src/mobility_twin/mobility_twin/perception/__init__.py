"""Perception (ROS-free): LiDAR frames to detections in the map frame."""

from .detections import SOURCE_CAV, SOURCE_RSU, SOURCE_V2X, Detections
from .lidar_detector import DetectorConfig, DetectorStats, LidarDetector, SensorPose2D

__all__ = [
    "SOURCE_CAV",
    "SOURCE_RSU",
    "SOURCE_V2X",
    "Detections",
    "DetectorConfig",
    "DetectorStats",
    "LidarDetector",
    "SensorPose2D",
]
