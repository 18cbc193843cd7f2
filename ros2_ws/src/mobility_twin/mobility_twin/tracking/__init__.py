"""Tracking (ROS-free): multi-source late fusion of detections into tracks.

One module a concern: :mod:`.trackset` (tracks as arrays), :mod:`.motion` (the constant-velocity model:
the one prediction and update of the stack), :mod:`.gating` (Mahalanobis distance), :mod:`.association`
(gated optimal assignment), :mod:`.management` (births, confirmation, deletion, re-identification),
:mod:`.reorder` (late frames fused at their own stamp) and :mod:`.tracker` (the tracker that composes them,
and the :class:`Tracker` protocol another tracker implements to replace it).
"""

from .tracker import MultiSourceTracker, Tracker, TrackerConfig, TrackerStats
from .trackset import CONFIRMED, TENTATIVE, TrackSet, object_array

__all__ = ["CONFIRMED", "TENTATIVE", "MultiSourceTracker", "TrackSet", "Tracker", "TrackerConfig", "TrackerStats",
           "object_array"]
