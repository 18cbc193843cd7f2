"""The road network of the twin: edges, their free-flow times and successors, and a map-matcher that puts
a twin track (position, heading) on a road edge. The route guidance routes on it, the relation learner
reads the roads' state from it.

ROS-free. Built from a SUMO network file with ``sumolib`` (imported only there); coordinates are SUMO's
(``x, y`` of the network). :meth:`RoadGraph.in_frame` gives the same graph in another frame (``map``,
through :class:`mobility_twin_sim.sumo.network.NetFrame` ``to_map``), for callers that hold ``map``
coordinates; otherwise they convert their points to SUMO's (``to_sumo``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VCLASS = "passenger"


@dataclass(frozen=True)
class RoadGraph:
    """Edges that ``vclass`` may drive, as arrays indexed 0..E-1, and the edge-to-edge successor relation
    (a junction connection) in CSR form (``succ_ptr``, ``succ``). ``lane_successors[e][k]``: the successors
    the ``k``-th lane of edge ``e`` (in ``shapes`` order) connects to, where the network says (a turn lane
    leads to fewer roads than its edge); empty when unknown. ``lane_signals[e][k][j]``: the traffic light
    (id, link index) controlling the ``j``-th of those connections, ``("", -1)`` where none does."""

    ids: tuple[str, ...]
    length: np.ndarray  # [E] m
    speed: np.ndarray  # [E] m/s, the speed limit
    lanes: np.ndarray  # [E] lanes vclass may use
    succ_ptr: np.ndarray  # [E+1]
    succ: np.ndarray  # successors' indices
    shapes: tuple[tuple[np.ndarray, ...], ...]  # [E] the centre lines (k, 2) of its lanes vclass uses, SUMO xy
    net_file: str = ""
    lane_successors: tuple[tuple[tuple[int, ...], ...], ...] = ()
    lane_signals: tuple[tuple[tuple[tuple[str, int], ...], ...], ...] = ()

    @property
    def index(self) -> dict[str, int]:
        idx = self.__dict__.get("_index")
        if idx is None:
            idx = {e: i for i, e in enumerate(self.ids)}
            object.__setattr__(self, "_index", idx)
        return idx

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def free_flow_s(self) -> np.ndarray:
        """[E] s to drive each edge at its speed limit."""
        return self.length / np.maximum(self.speed, 0.1)

    def successors(self, i: int) -> np.ndarray:
        return self.succ[self.succ_ptr[i]:self.succ_ptr[i + 1]]

    def predecessors(self, i: int) -> np.ndarray:
        rows = np.repeat(np.arange(len(self)), np.diff(self.succ_ptr))
        return rows[self.succ == i]

    @classmethod
    def from_net_file(cls, net_file: str | Path, vclass: str = VCLASS) -> RoadGraph:
        import sumolib

        net = sumolib.net.readNet(str(net_file), withInternal=False)
        edges = [e for e in net.getEdges() if e.getFunction() != "internal" and e.allows(vclass)]
        index = {e.getID(): i for i, e in enumerate(edges)}
        ptr, succ, length, speed, lanes, shapes, lane_succ, lane_sig = [0], [], [], [], [], [], [], []
        for e in edges:
            usable = [ln for ln in e.getLanes() if ln.allows(vclass)]
            per_lane = []
            for ln in usable:
                links: dict[int, tuple[str, int]] = {}  # successor -> the first connection's signal
                for c in ln.getOutgoing():
                    if c.getTo().getID() in index and c.getToLane().allows(vclass):
                        links.setdefault(index[c.getTo().getID()], (c.getTLSID() or "", int(c.getTLLinkIndex())))
                per_lane.append(sorted(links.items()))
            succ.extend(sorted({j for lane in per_lane for j, _ in lane}))  # the edge's: those of its lanes
            ptr.append(len(succ))
            length.append(e.getLength())
            speed.append(e.getSpeed())
            lanes.append(len(usable))
            shapes.append(tuple(np.asarray(ln.getShape(), float).reshape(-1, 2) for ln in usable))
            lane_succ.append(tuple(tuple(j for j, _ in lane) for lane in per_lane))
            lane_sig.append(tuple(tuple(sig for _, sig in lane) for lane in per_lane))
        return cls(tuple(index), np.asarray(length, float), np.asarray(speed, float), np.asarray(lanes, np.int64),
                   np.asarray(ptr, np.int64), np.asarray(succ, np.int64), tuple(shapes), str(net_file),
                   tuple(lane_succ), tuple(lane_sig))

    def in_frame(self, to_frame) -> RoadGraph:
        """The same graph with its lane shapes mapped by ``to_frame(x, y) -> (x', y')`` (a rigid or similar
        transform: lengths and speeds stay those of the network)."""
        def moved(shape: np.ndarray) -> np.ndarray:
            x, y = to_frame(shape[:, 0], shape[:, 1])
            return np.column_stack([x, y])

        return dataclasses.replace(self, shapes=tuple(tuple(moved(lane) for lane in lanes) for lanes in self.shapes))

    @property
    def geometry(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """([E, 2] start, [E, 2] end, [E, 2] unit direction from start to end) of each edge, from the mean
        of its lanes' first and last points."""
        geo = self.__dict__.get("_geometry")
        if geo is None:
            start = np.array([np.mean([lane[0] for lane in lanes], axis=0) for lanes in self.shapes]).reshape(-1, 2)
            end = np.array([np.mean([lane[-1] for lane in lanes], axis=0) for lanes in self.shapes]).reshape(-1, 2)
            d = end - start
            direction = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
            geo = (start, end, direction)
            object.__setattr__(self, "_geometry", geo)
        return geo

    def route_indices(self, edges) -> list[int] | None:
        """Indices of a route's edge ids (None when one is not in the graph)."""
        idx = self.index
        out = [idx.get(e) for e in edges]
        return None if any(i is None for i in out) else out

    def connected(self, route: list[int]) -> bool:
        return all(b in self.successors(a) for a, b in itertools.pairwise(route))


class EdgeMatcher:
    """Map-matching of points with a heading onto the graph's edges: the nearest lane centre-line sample of
    an edge whose direction agrees with the heading (within ``max_heading_rad``), no farther than ``max_m``.
    Vectorised with a k-d tree over samples every ``step_m`` along each lane."""

    def __init__(self, graph: RoadGraph, *, step_m: float = 2.0, max_m: float = 12.0,
                 max_heading_rad: float = math.radians(50.0), candidates: int = 16) -> None:
        from scipy.spatial import cKDTree

        pts, owner, ang, along, lane_no = [], [], [], [], []
        for i, k, shape in ((i, k, lane) for i, lanes in enumerate(graph.shapes) for k, lane in enumerate(lanes)):
            done = 0.0
            drawn = sum(float(np.hypot(*(b - a))) for a, b in itertools.pairwise(shape)) or 1.0
            for a, b in itertools.pairwise(shape):
                seg = b - a
                seg_len = float(np.hypot(*seg))
                n = max(1, math.ceil(seg_len / step_m))
                s = (np.arange(n) + 0.5) / n
                pts.append(a + s[:, None] * seg)
                owner.append(np.full(n, i))
                lane_no.append(np.full(n, k))
                ang.append(np.full(n, math.atan2(seg[1], seg[0])))
                along.append((done + s * seg_len) / drawn)  # share of the edge's drawn length
                done += seg_len
        self.points = np.concatenate(pts)
        self.owner = np.concatenate(owner)
        self.lane = np.concatenate(lane_no)
        self.angle = np.concatenate(ang)
        self.along = np.clip(np.concatenate(along), 0.0, 1.0)
        self.tree = cKDTree(self.points)
        self.max_m = max_m
        self.max_heading = max_heading_rad
        self.k = candidates

    def match(self, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> np.ndarray:
        """[N] edge index of each point (-1: no edge near enough in that direction). ``heading`` in rad (ENU,
        0 = east, counter-clockwise; SUMO xy are ENU too); NaN where it is not known (the nearest edge in
        any direction)."""
        return self.locate(x, y, heading)[0]

    def locate(self, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([N] edge index or -1, [N] position along it as a share of its length, 0 = start, 1 = end)."""
        edge, along, _ = self.locate_lane(x, y, heading)
        return edge, along

    def locate_lane(self, x: np.ndarray, y: np.ndarray,
                    heading: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`locate` and [N] the lane (its position among the edge's lanes in ``shapes``; -1 with the
        edge)."""
        hit = self.nearest(x, y, heading)
        found = hit >= 0
        safe = np.where(found, hit, 0)
        return (np.where(found, self.owner[safe], -1).astype(np.int64), np.where(found, self.along[safe], 0.0),
                np.where(found, self.lane[safe], -1).astype(np.int64))

    def nearest(self, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> np.ndarray:
        """[N] index of the best lane sample (into ``points``, ``owner``, ``lane``, ``angle``, ``along``), -1
        where none is near enough in that direction.

        The best of the ``candidates`` nearest samples, by distance plus 3 m per radian of turn. The two
        nearest are looked at first: a point whose best score among them is less than the second one's
        distance has its answer (every farther sample scores at least its distance), the rest (a few in a
        thousand, and exact ties) are asked again with all ``candidates``. Same answer, a quarter of the search."""
        x, y, heading = (np.atleast_1d(np.asarray(a, float)) for a in (x, y, heading))
        if len(x) == 0:
            return np.zeros(0, np.int64)
        xy = np.column_stack([x, y])
        k = min(self.k, len(self.points))
        hit, score, bound = self._best_of(xy, heading, min(2, k))
        again = np.flatnonzero(score >= bound) if k > 2 else np.zeros(0, np.int64)  # (>=: a tie, in the same order)
        if len(again):
            hit[again] = self._best_of(xy[again], heading[again], k)[0]
        return hit

    def _best_of(self, xy: np.ndarray, heading: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Among the ``k`` samples nearest each point: ([N] best sample or -1, [N] its score (inf: none),
        [N] distance of the k-th nearest (inf: fewer than k within ``max_m``))."""
        dist, cand = self.tree.query(xy, k=k, distance_upper_bound=self.max_m)
        dist, cand = dist.reshape(len(xy), k), cand.reshape(len(xy), k)
        valid = cand < len(self.points)
        safe = np.where(valid, cand, 0)
        turn = np.abs((self.angle[safe] - heading[:, None] + math.pi) % (2 * math.pi) - math.pi)
        turn = np.where(np.isnan(turn), 0.0, turn)  # no heading: any direction
        ok = valid & (turn <= self.max_heading)
        score = np.where(ok, dist + 3.0 * turn, np.inf)
        best = np.argmin(score, axis=1)
        rows = np.arange(len(xy))
        top = score[rows, best]
        return np.where(np.isfinite(top), safe[rows, best], -1).astype(np.int64), top, dist[:, -1]
