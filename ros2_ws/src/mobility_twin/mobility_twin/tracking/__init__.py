"""Tracking (ROS-free): multi-source late fusion of detections into tracks."""

from .tracker import CONFIRMED, TENTATIVE, MultiSourceTracker, TrackerConfig, TrackerStats, TrackSet

__all__ = ["CONFIRMED", "TENTATIVE", "MultiSourceTracker", "TrackSet", "TrackerConfig", "TrackerStats"]
