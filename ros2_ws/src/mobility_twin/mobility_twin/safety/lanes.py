"""Lane discipline for the conflict predictor: the direction of the lane each road user drives in.

Drivers keep their lane. A motion model that extrapolates a track's own velocity direction turns a heading
error of a few degrees into metres of lateral drift over a 4 s horizon: two cars side by side in adjacent
lanes, or passing each other in opposite lanes, then seem to touch. Where the twin knows the road network,
:class:`LaneHeadings` map-matches each road user (position and heading, :class:`mobility_twin_core.roads.
EdgeMatcher`) to a lane and gives that lane's direction there; the predictor then moves the user along it
(:attr:`mobility_twin.safety.Motion.lane_heading`). A user farther than ``max_offset_m`` across from every
lane centre, or heading more than ``max_turn_rad`` away from it (turning in a junction, changing lanes,
off the road), keeps its own heading (NaN).

ROS-free. The graph must be in the frame of the tracks (``map``: :meth:`RoadGraph.in_frame`).
"""

from __future__ import annotations

import math

import numpy as np

from mobility_twin_core.roads import EdgeMatcher, RoadGraph


class LaneHeadings:
    """``headings(x, y, heading) -> [N]`` the matched lane's direction (rad), NaN where none is sure."""

    def __init__(self, graph: RoadGraph, *, max_offset_m: float = 1.6, max_turn_rad: float = math.radians(25.0)
                 ) -> None:
        if not (max_offset_m > 0 and 0 < max_turn_rad <= math.pi / 2):
            raise ValueError("lane headings: max_offset_m > 0 and 0 < max_turn_rad <= pi/2")
        self.graph = graph
        self.matcher = EdgeMatcher(graph, max_m=max_offset_m + 2.0, max_heading_rad=max_turn_rad)
        self.max_offset_m = max_offset_m
        self.counts = {"on_lane": 0, "off_lane": 0}

    def headings(self, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> np.ndarray:
        x, y, heading = (np.atleast_1d(np.asarray(a, float)) for a in (x, y, heading))
        out = np.full(len(x), np.nan)
        if not len(x):
            return out
        finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(heading)
        hit, _ = self.matcher.nearest(np.where(finite, x, 0.0), np.where(finite, y, 0.0),
                                      np.where(finite, heading, np.nan))
        ok = finite & (hit >= 0)
        safe = np.where(ok, hit, 0)
        angle = self.matcher.angle[safe]
        d = np.column_stack([x, y]) - self.matcher.points[safe]
        across = np.abs(-d[:, 0] * np.sin(angle) + d[:, 1] * np.cos(angle))  # from the lane's centre line
        ok &= across <= self.max_offset_m
        out[ok] = angle[ok]
        self.counts["on_lane"] += int(ok.sum())
        self.counts["off_lane"] += int((~ok).sum())
        return out
