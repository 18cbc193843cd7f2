"""Collision warning (issue 18), ROS-free: pairwise conflict prediction from tracks with their covariance
(:mod:`.predictor`), warnings with hysteresis (:mod:`.warnings`), the raw-detection baseline (:mod:`.baseline`)."""

from mobility_twin.safety.baseline import RawDetections
from mobility_twin.safety.lanes import LaneHeadings
from mobility_twin.safety.predictor import (
    CROSSING,
    HEAD_ON,
    KIND_NAMES,
    REAR_END,
    Conflict,
    ConflictPredictor,
    Motion,
    PredictorConfig,
)
from mobility_twin.safety.warnings import ActiveWarning, WarningConfig, WarningEvent, WarningTracker

__all__ = ["CROSSING", "HEAD_ON", "KIND_NAMES", "REAR_END", "ActiveWarning", "Conflict", "ConflictPredictor", "LaneHeadings",
           "Motion",
           "PredictorConfig", "RawDetections", "WarningConfig", "WarningEvent", "WarningTracker"]
