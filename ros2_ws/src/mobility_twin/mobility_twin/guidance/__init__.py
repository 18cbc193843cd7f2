"""Route guidance (issue 18), ROS-free: the road network and map-matching (:mod:`mobility_twin_core.roads`), the traffic
state per edge from the twin (:mod:`.estimator`), fastest routes and the decisions of when a CAV gets one
(:mod:`.router`). The ``route_guidance`` node (``nodes/route_guidance.py``) is the ROS glue."""

from mobility_twin.guidance.estimator import EstimatorConfig, TrafficStateEstimator
from mobility_twin.guidance.router import Decision, GuidanceConfig, RouteGuidance, Router
from mobility_twin_core.roads import EdgeMatcher, RoadGraph

__all__ = ["Decision", "EdgeMatcher", "EstimatorConfig", "GuidanceConfig", "RoadGraph", "RouteGuidance", "Router",
           "TrafficStateEstimator"]
