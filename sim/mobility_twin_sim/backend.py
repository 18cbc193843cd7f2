"""What the replay engine needs from a world, whichever world it is: the :class:`WorldBackend` protocol.

Two worlds implement it: the T-Drive replay (``world: {kind: tdrive_replay}``, trajectories interpolated
between real fixes, the hardware-in-the-loop reference) and SUMO (``world: {kind: sumo}``, microscopic
traffic on a road network, :class:`mobility_twin_sim.sumo.SumoWorld`). The replay engine, the sensors,
V2X, ground truth and evaluation talk to the protocol only.

Each slot the engine calls :meth:`WorldBackend.advance` with the slot's time and receives a
:class:`WorldState`: every road user (:class:`VehicleStates`: ids, pose, speed, class, dimensions), the
traffic signals (:class:`SignalStates`) and which road users are inside the scenario area (ground truth).
Static things come once: the infrastructure as the twin model's :class:`~mobility_twin_core.model.Layout`,
and the :class:`StaticScene` (buildings the LiDAR occludes against, the network label). Control goes in
through :meth:`WorldBackend.command` (:class:`RouteCommand`, :class:`TargetCommand`, :class:`SpeedCommand`,
:class:`HeadwayCommand`, :class:`IncidentCommand`), which never raises for a bad command: it returns a
:class:`CommandResult` saying why it was rejected, and the world counts it.

Time is UNIX seconds (the scenario's clock, as ``/clock`` publishes it). Positions are in ``map`` (m),
headings in radians (ENU: 0 = east, counter-clockwise), speeds in m/s, dimensions in m.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from mobility_twin_core.model import Layout, ObjectClass
from mobility_twin_sim.fleet import FleetState
from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.lidar import Boxes, SensorPose, Structures


@dataclass(frozen=True)
class VehicleStates:
    """Every road user present at ``t`` (vehicles, cyclists, pedestrians), as aligned arrays.

    ``ids`` are the ground-truth ids (int64, stable for a run: the T-Drive taxi id, or the SUMO world's
    number for each vehicle or person); ``object_class`` holds :class:`ObjectClass` values; ``yaw_rate``
    (rad/s) is what odometry reports, computed by the world (SUMO: from the previous slot).
    """

    t: float
    ids: np.ndarray  # [N] int64
    x: np.ndarray  # [N] m
    y: np.ndarray  # [N] m
    heading: np.ndarray  # [N] rad
    speed: np.ndarray  # [N] m/s
    object_class: np.ndarray  # [N] uint8, ObjectClass
    length: np.ndarray  # [N] m
    width: np.ndarray  # [N] m
    height: np.ndarray  # [N] m
    yaw_rate: np.ndarray | None = None  # [N] rad/s

    def __len__(self) -> int:
        return len(self.ids)

    def fleet_state(self) -> FleetState:
        """The same vehicles as the T-Drive replay's :class:`FleetState` (what today's engine consumes)."""
        return FleetState(self.t, self.ids, self.x, self.y, self.heading, self.speed)

    def boxes(self) -> Boxes:
        """Oriented boxes for the LiDAR ray caster (index i of a scan's ``hit_vehicle`` is row i here)."""
        return Boxes(self.ids, self.x, self.y, self.heading, self.length, self.width, self.height)

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        return self.speed * np.cos(self.heading), self.speed * np.sin(self.heading)

    def index_of(self, vehicle_id: int) -> int | None:
        hit = np.flatnonzero(self.ids == vehicle_id)
        return int(hit[0]) if len(hit) else None

    def vehicles_only(self) -> np.ndarray:
        """[N] bool: road users that are vehicles (offloading, placement and relations use only these)."""
        return self.object_class != ObjectClass.PEDESTRIAN


@dataclass(frozen=True)
class SignalStates:
    """Traffic signals at ``t``: one row per signal (a SUMO traffic-light programme).

    ``state[i]`` has one character per controlled link (SUMO's convention: ``G``/``g`` green with/without
    priority, ``y`` yellow, ``r`` red, ``u`` red-yellow, ``o``/``O`` off); ``x``, ``y`` the junction in
    ``map``; ``next_switch_s`` the seconds until the current phase ends. Empty for the T-Drive replay.
    """

    t: float
    ids: tuple[str, ...] = ()
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state: tuple[str, ...] = ()
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    next_switch_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class WorldState:
    """What the world looks like at ``t``: the ground truth of one slot."""

    t: float
    vehicles: VehicleStates
    signals: SignalStates
    in_area: np.ndarray  # [N] bool: inside the scenario area


@dataclass(frozen=True)
class StaticScene:
    """What does not move: structures the LiDAR hits (None: none), and how to label the world when it is
    shown (``label`` says when a network is synthetic)."""

    structures: Structures | None
    label: str
    synthetic: bool = False
    network: str = ""


# ------------------------------------------------------------------------------------------------ control
@dataclass(frozen=True)
class RouteCommand:
    """Drive along ``edges`` (road ids of the network) from where the vehicle is now."""

    vehicle: int | str  # ground-truth id, or the world's name (a CAV id such as "cav_0")
    edges: tuple[str, ...]


@dataclass(frozen=True)
class TargetCommand:
    """Drive to ``edge`` by the fastest route from where the vehicle is now."""

    vehicle: int | str
    edge: str


@dataclass(frozen=True)
class SpeedCommand:
    """Hold ``speed_mps`` (negative: give control back to the driver model)."""

    vehicle: int | str
    speed_mps: float


@dataclass(frozen=True)
class HeadwayCommand:
    """Keep at least ``headway_s`` of time gap to the vehicle ahead (a driver told to take care, an ACC's gap
    setting); negative: the driver's own gap back."""

    vehicle: int | str
    headway_s: float


@dataclass(frozen=True)
class IncidentCommand:
    """``close_road``, ``close_lane`` (``lane``), ``slowdown`` (``speed_mps``) or ``reopen`` on ``edge``
    for ``duration_s`` (0: until reopened)."""

    kind: str
    edge: str
    lane: int = 0
    speed_mps: float = 2.0
    duration_s: float = 0.0


Command = RouteCommand | TargetCommand | SpeedCommand | HeadwayCommand | IncidentCommand


@dataclass(frozen=True)
class CommandResult:
    """Whether a command was applied; ``reason`` says why not (unknown vehicle, unknown edge, no route ...)."""

    accepted: bool
    reason: str = ""
    command: object = None


# ------------------------------------------------------------------------------------------------ the protocol
@runtime_checkable
class WorldBackend(Protocol):
    """A world the replay engine can run. ``kind``: ``tdrive_replay`` or ``sumo``.

    Attributes: ``start_s`` / ``end_s`` (UNIX s, the scenario window), ``slot_s`` (ground-truth period),
    ``projection`` (lon/lat <-> ``map``), ``layout`` (RSUs, CAVs, edge servers, sites, area: the twin model),
    ``statics`` (:class:`StaticScene`), ``seekable`` (whether :meth:`advance` may go back in time: the
    T-Drive replay can, SUMO cannot and raises).
    """

    kind: str
    start_s: float
    end_s: float
    slot_s: float
    projection: LocalENU
    layout: Layout
    statics: StaticScene
    seekable: bool

    def advance(self, t: float) -> WorldState:
        """The world at ``t`` (UNIX s). SUMO steps forward slot by slot to the last step at or before ``t`` and
        reports that step's time as ``state.t`` (a sensor stamped between two slots sees the earlier one);
        asking for an earlier ``t`` than the last call is an error for a world that is not ``seekable``."""
        ...

    def cav_vehicle(self, cav_id: str, state: WorldState) -> int | None:
        """Row in ``state.vehicles`` of the CAV's own vehicle (its LiDAR ignores it), None when not on the road."""
        ...

    def cav_lidar_pose(self, cav_id: str, state: WorldState) -> SensorPose | None:
        """The CAV's LiDAR in ``map`` at ``state.t`` (roof height + mount), None when it is not on the road."""
        ...

    def command(self, command: Command) -> CommandResult:
        """Apply a control command now; a bad one is rejected (and counted), never raised."""
        ...

    def describe(self) -> dict:
        """The static layout as plain data (published latched on ``/sim/world``), with the world's label."""
        ...

    def close(self) -> dict:
        """End the run; returns what it wrote (e.g. SUMO's ``tripinfo`` and ``ssm`` files) and its counters."""
        ...
