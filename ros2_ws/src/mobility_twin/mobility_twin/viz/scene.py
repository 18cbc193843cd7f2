"""What a picture of the twin shows, independent of where it came from (live topics or a recording).

Producers fill a :class:`TwinScene` (the live `mtwin snapshot` collector, a recording reader, the demo);
renderers draw it (the PNG snapshot, the rviz markers of twin_viz). ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mobility_twin_core import Layout


@dataclass
class TrackView:
    """Tracks at one instant. ``xy`` (N, 2) m, ``v`` (N, 2) m/s, ``yaw`` (N,) rad, ``dims`` (N, 3) length,
    width, height m, ``age`` (N,) s of information, ``sources`` per track (ids of sensors that saw it)."""

    stamp: float
    ids: np.ndarray
    xy: np.ndarray
    v: np.ndarray
    yaw: np.ndarray
    dims: np.ndarray
    age: np.ndarray
    sources: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class ServerView:
    server_id: str
    x: float
    y: float
    radius: float
    load: float  # [0, 1]
    vehicles_served: int = 0


@dataclass
class SignalView:
    """One traffic signal (a signalised junction) at an instant: ``state`` one character per controlled link
    (SUMO's convention: G/g green, y yellow, r red, ...)."""

    signal_id: str
    x: float
    y: float
    state: str

    @property
    def colour_name(self) -> str:
        """yellow when a link is changing (yellow, red-yellow), else green when some link has green, else red
        (all red); "off" when the signal is dark."""
        s = self.state
        if not s or all(c in "oO" for c in s):
            return "off"
        if any(c in "yYu" for c in s):
            return "yellow"
        return "green" if any(c in "Gg" for c in s) else "red"


@dataclass
class RouteView:
    """A CAV's route as the guidance sent it: ``xy`` (K, 2) the roads' centre line in map, from where the
    vehicle was when it was routed to its destination."""

    vehicle_id: str
    xy: np.ndarray


@dataclass
class WarningView:
    """A collision warning: where the two parties would meet (map), how soon and how likely; ``parties`` are
    the positions of the parties among the drawn tracks (those found: connected ones by their vehicle id)."""

    warning_id: str
    point: tuple[float, float]
    time_to_conflict: float  # s
    probability: float  # [0, 1]
    vehicles: tuple[str, str] = ("", "")  # the parties' own ids ('' when not connected)
    parties: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class TwinScene:
    """Everything one picture shows: the static layout, the twin's tracks with their recent trails, the
    edge servers' twins, which server serves which vehicle, and recent migrations."""

    layout: Layout | None = None  # the infrastructure: area, RSUs, CAVs, edge servers, sites, cloud (None: unknown)
    tracks: TrackView | None = None
    trails: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> (K, 2) past positions, oldest first
    servers: list[ServerView] = field(default_factory=list)
    links: list[tuple[int, str]] = field(default_factory=list)  # (track id, serving server id)
    migrations: list[tuple[str, str, str]] = field(default_factory=list)  # (twin id, from host, to host)
    ground_truth: TrackView | None = None  # simulation only: drawn faintly for comparison
    title: str = ""
    migration_age_s: list[float] = field(default_factory=list)  # per migration, s since it happened (empty: all new)
    stale: set[str] = field(default_factory=set)  # entity twins (RSUs, CAVs, sites) whose information is stale
    layout_stamp: float | None = None  # stamp of the layout message (s): the scenario start under the simulator
    signals: list[SignalView] = field(default_factory=list)  # the traffic signals' twin (SUMO worlds), newest
    routes: list[RouteView] = field(default_factory=list)  # the CAVs' guided routes (route guidance)
    warnings: list[WarningView] = field(default_factory=list)  # the collision warnings in force
