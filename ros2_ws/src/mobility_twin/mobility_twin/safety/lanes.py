"""Lane discipline for the conflict predictor: the direction of the lane each road user drives in.

Drivers keep their lane. A motion model that extrapolates a track's own velocity direction turns a heading
error of a few degrees into metres of lateral drift over a 4 s horizon: two cars side by side in adjacent
lanes, or passing each other in opposite lanes, then seem to touch. Where the twin knows the road network,
:class:`LaneHeadings` map-matches each road user (position and heading, :class:`mobility_twin_core.roads.
EdgeMatcher`) to a lane and gives that lane's direction there; the predictor then moves the user along it
(:attr:`mobility_twin.safety.Motion.lane_heading`). A user farther than ``max_offset_m`` across from every
lane centre, or heading more than ``max_turn_rad`` away from it (turning in a junction, changing lanes,
off the road), keeps its own heading (NaN).

**Red lights.** With the signals' states (SPaT: :class:`mobility_twin_sim.backend.SignalStates`, from
``/infrastructure/signals``), :meth:`LaneHeadings.locate` gives, for a road user on a lane whose
every connection is red for at least ``red_for_s`` more, how far its centre can still go: to the lane's end
(the stop line) less half its length. A user that could not stop there braking at ``max_decel_mps2`` (a
red-light runner, or one caught in the dilemma zone) is not held (inf), nor is one on a lane without a light
or with any other signal state (green, yellow, off, unknown): the prediction then does not assume a stop.

ROS-free. The graph must be in the frame of the tracks (``map``: :meth:`RoadGraph.in_frame`).
"""

from __future__ import annotations

import math

import numpy as np

from mobility_twin_core.roads import EdgeMatcher, RoadGraph


class LaneHeadings:
    """``headings(x, y, heading) -> [N]`` the matched lane's direction (rad), NaN where none is sure."""

    def __init__(self, graph: RoadGraph, *, max_offset_m: float = 1.6, max_turn_rad: float = math.radians(25.0),
                 max_decel_mps2: float = 4.5, red_for_s: float = 2.0) -> None:
        if not (max_offset_m > 0 and 0 < max_turn_rad <= math.pi / 2 and max_decel_mps2 > 0 and red_for_s >= 0):
            raise ValueError("lane headings: max_offset_m > 0, 0 < max_turn_rad <= pi/2, max_decel_mps2 > 0, "
                             "red_for_s >= 0")
        self.max_decel_mps2 = max_decel_mps2
        self.red_for_s = red_for_s
        self.graph = graph
        self.matcher = EdgeMatcher(graph, max_m=max_offset_m + 2.0, max_heading_rad=max_turn_rad)
        self.max_offset_m = max_offset_m
        self.counts = {"on_lane": 0, "off_lane": 0, "held_at_red": 0}

    def headings(self, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> np.ndarray:
        return self._match(x, y, heading)[0]

    def _match(self, x, y, heading) -> tuple[np.ndarray, np.ndarray]:
        """([N] lane direction or NaN, [N] matched lane sample or -1)."""
        x, y, heading = (np.atleast_1d(np.asarray(a, float)) for a in (x, y, heading))
        out = np.full(len(x), np.nan)
        if not len(x):
            return out, np.zeros(0, np.int64)
        finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(heading)
        hit = self.matcher.nearest(np.where(finite, x, 0.0), np.where(finite, y, 0.0),
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
        return out, np.where(ok, hit, -1)

    def locate(self, x, y, heading, speed=None, length=None, signals=None) -> tuple[np.ndarray, np.ndarray]:
        """([N] lane direction or NaN, [N] how far each centre can still go before a red light's stop line,
        inf where no red light holds it). ``signals``: a ``SignalStates`` (None: not known, nothing held)."""
        x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
        lane_heading, hit = self._match(x, y, heading)
        stop = np.full(len(lane_heading), np.inf)
        graph = self.graph
        if signals is None or not len(signals) or not graph.lane_signals or not (hit >= 0).any():
            return lane_heading, stop
        n = len(stop)
        speed = np.zeros(n) if speed is None else np.nan_to_num(np.atleast_1d(np.asarray(speed, float)))
        length = np.full(n, 4.5) if length is None else np.atleast_1d(np.asarray(length, float))
        state = dict(zip(signals.ids, signals.state, strict=True))
        switch = dict(zip(signals.ids, np.asarray(signals.next_switch_s, float), strict=True))
        for r in np.flatnonzero(hit >= 0):
            e, k = int(self.matcher.owner[hit[r]]), int(self.matcher.lane[hit[r]])
            links = graph.lane_signals[e][k] if k < len(graph.lane_signals[e]) else ()
            if not links or not all(self._red(state, switch, tls, link) for tls, link in links):
                continue
            sample, angle = self.matcher.points[hit[r]], float(self.matcher.angle[hit[r]])
            ahead = (x[r] - sample[0]) * math.cos(angle) + (y[r] - sample[1]) * math.sin(angle)  # of the sample
            to_line = float(graph.length[e]) * (1.0 - float(self.matcher.along[hit[r]])) - ahead - 0.5 * float(length[r])
            if to_line < 0 or speed[r] ** 2 > 2 * self.max_decel_mps2 * max(to_line, 1e-3):
                continue  # past the line, or cannot stop before it: not held
            stop[r] = to_line
        self.counts["held_at_red"] += int(np.isfinite(stop).sum())
        return lane_heading, stop

    def _red(self, state: dict, switch: dict, tls: str, link: int) -> bool:
        s = state.get(tls)
        return (bool(tls) and s is not None and 0 <= link < len(s) and s[link] in "rR"
                and switch.get(tls, 0.0) >= self.red_for_s)
