"""The replay engine: the world's events in time order, ROS-free (the replay node paces and publishes them).

Event streams, each at its own rate, merged by time:

* ground truth of every vehicle, each ``time.slot_s`` (also the clock period),
* a LiDAR frame of every RSU and CAV at the LiDAR rate, sensors staggered evenly within the period (as
  unsynchronised real sensors are, so that fusion must compensate for their different stamps),
* CAV odometry at its rate, with the scenario's noise,
* the true state of the edge servers, once a second;
* with ``v2x.penetration`` > 0, the connected vehicles' own reports (cooperative awareness), relayed per
  serving edge server.

Randomness (range noise, dropout, odometry noise) comes from generators seeded by (scenario seed,
stream, index), so a run is reproducible and a seek lands on the same data as a straight run.

The engine talks to its world through the :class:`~mobility_twin_sim.backend.WorldBackend` protocol
(:func:`mobility_twin_sim.world.build_world`): the T-Drive replay, or SUMO. With SUMO, the LiDARs also see
the buildings (points with ``hit_vehicle == STRUCTURE``), the ground-truth ticks carry the traffic signals,
:meth:`Replay.command` changes a vehicle's route (applied before the next step: the world is advanced and
commanded from one thread), and :meth:`Replay.seek` only goes forward. SUMO has a state at its steps only
(the slot): an event between two slots (the staggered LiDARs, 20 Hz odometry) sees the road users of the
slot before it moved on by their speed and heading for the time since (at most one slot), so that every
frame's content matches its stamp. :meth:`Replay.close` ends the world (SUMO writes its outputs).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from mobility_twin_sim.backend import Command, CommandResult, SignalStates, VehicleStates
from mobility_twin_sim.lidar import Boxes, Lidar, Scan, SensorPose
from mobility_twin_sim.world import SumoScenarioWorld, World

SERVER_PERIOD_S = 1.0


@dataclass(frozen=True)
class SensorFrame:
    sensor_id: str  # "rsu_03" or "cav_3171"
    kind: str  # "rsu" | "cav"
    frame_id: str  # the sensor's TF frame, e.g. "rsu_03/lidar"
    stamp: float  # sim time (UNIX s) of the scan
    index: int  # frame number of this sensor
    pose: SensorPose  # true sensor pose in map at the stamp
    scan: Scan
    box_ids: np.ndarray | None = None  # the ground-truth id of each box the scan's hit_vehicle indexes

    def seen_ids(self) -> np.ndarray:
        """The ground-truth ids of the road users at least one return of this frame hit (each once)."""
        hit = self.scan.hit_vehicle
        if self.box_ids is None or not len(hit):
            return np.zeros(0, np.int64)
        return np.asarray(self.box_ids)[np.unique(hit[hit >= 0])]


@dataclass(frozen=True)
class Odometry:
    cav_id: str
    base_frame: str
    stamp: float
    x: float  # measured (noisy) pose in map, m
    y: float
    yaw: float
    speed: float  # m/s along the heading
    yaw_rate: float  # rad/s
    sigma_position: float
    sigma_yaw: float
    sigma_speed: float
    true_x: float
    true_y: float
    true_yaw: float


@dataclass(frozen=True)
class GroundTruth:
    stamp: float
    state: VehicleStates  # every road user (T-Drive: inside the loaded area) at the stamp, with class and size
    boxes: Boxes
    in_area: np.ndarray  # bool per vehicle: inside the scenario area
    signals: SignalStates | None = None  # the traffic signals at the stamp (SUMO; empty for the T-Drive replay)


@dataclass(frozen=True)
class V2xReport:
    """The cooperative-awareness messages one edge server relays at one instant: connected vehicles it
    serves, with their own (GNSS-noisy) position and velocity."""

    server_id: str
    stamp: float
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    position_sigma: float


@dataclass
class Tick:
    """Everything due at one instant of sim time."""

    t: float
    ground_truth: GroundTruth | None = None
    frames: list[SensorFrame] = field(default_factory=list)
    odometry: list[Odometry] = field(default_factory=list)
    servers: list[dict] | None = None
    v2x: list[V2xReport] = field(default_factory=list)


@dataclass(frozen=True)
class ReplayOptions:
    lidar: bool = True  # cast LiDAR rays (False: trajectories, odometry, ground truth only)
    rsu_lidar: bool = True
    cav_lidar: bool = True


class Replay:
    """Iterates the world's events from ``start`` (offset in s from the scenario start)."""

    def __init__(self, world: World | SumoScenarioWorld, options: ReplayOptions = ReplayOptions()) -> None:
        self.world = world
        self.options = options
        sc = world.scenario
        structures = world.statics.structures  # buildings occlude and return points of their own
        self.rsu_lidar = Lidar(sc.rsus.lidar, structures)
        self.cav_lidar = Lidar(sc.cavs.lidar, structures)
        self.duration = world.end_s - world.start_s
        self.slot = sc.time.slot_s
        self._streams: list[tuple[str, str, float, float]] = []  # (kind, id, period, phase)
        self._streams.append(("gt", "", self.slot, 0.0))
        self._streams.append(("servers", "", SERVER_PERIOD_S, 0.0))
        sensors = []
        if options.lidar and options.rsu_lidar:
            sensors += [("rsu", r.rsu_id, 1.0 / sc.rsus.lidar.rate_hz) for r in world.rsus]
        if options.lidar and options.cav_lidar:
            sensors += [("cav", c.cav_id, 1.0 / sc.cavs.lidar.rate_hz) for c in world.cavs]
        for i, (kind, sid, period) in enumerate(sensors):
            self._streams.append((kind, sid, period, period * i / max(1, len(sensors))))
        self._streams += [("odom", c.cav_id, 1.0 / sc.cavs.odometry_rate_hz, 0.0) for c in world.cavs]
        if sc.v2x.penetration > 0:
            self._streams.append(("v2x", "", 1.0 / sc.v2x.rate_hz, 0.5 / sc.v2x.rate_hz))
        self._rsus = {r.rsu_id: r for r in world.rsus}
        self._cavs = {c.cav_id: c for c in world.cavs}
        self._sensor_index = {sid: i for i, (_, sid, _) in enumerate(sensors)}
        self._cav_vehicles: set[int] | None = None  # ground-truth ids of the CAVs (V2X leaves them out)
        self._closed: dict | None = None
        self.position = 0.0
        self.seek(0.0)

    # ---------------------------------------------------------------------------------- control
    def seek(self, offset_s: float) -> None:
        """Continue from ``offset_s`` seconds after the scenario start (clamped to the scenario). A world that
        is not ``seekable`` (SUMO) only goes forward: an earlier offset is a ValueError."""
        offset_s = min(max(0.0, offset_s), self.duration)
        if not self.world.seekable and offset_s < self.position - 1e-9:
            raise ValueError(f"the {self.world.kind} world only goes forward: cannot seek back to {offset_s:.1f} s "
                             f"from {self.position:.1f} s")
        self.position = offset_s
        self._heap: list[tuple[float, int, int]] = []  # (time offset, stream, index)
        for s, (_, _, period, phase) in enumerate(self._streams):
            index = max(0, math.ceil((offset_s - phase) / period - 1e-9))
            heapq.heappush(self._heap, (phase + index * period, s, index))

    @property
    def finished(self) -> bool:
        return not self._heap or self._heap[0][0] > self.duration + 1e-9

    def next_time(self) -> float | None:
        """Offset (s) of the next tick, None when the scenario is over."""
        return None if self.finished else self._heap[0][0]

    def command(self, command: Command) -> CommandResult:
        """Apply a control command to the world now (between two steps); a bad one is rejected, never raised."""
        return self.world.command(command)

    def close(self) -> dict:
        """End the run: the world stops (SUMO writes its trip info and ssm files); returns what it wrote and
        counted. Idempotent."""
        if self._closed is None:
            self._closed = self.world.close()
        return self._closed

    # ---------------------------------------------------------------------------------- stepping
    def __iter__(self) -> Iterator[Tick]:
        while not self.finished:
            yield self.step()

    def step(self) -> Tick:
        """Everything due at the next event time."""
        if self.finished:
            raise StopIteration("the scenario is over")
        offset = self._heap[0][0]
        due = []
        while self._heap and abs(self._heap[0][0] - offset) < 1e-9:
            _, s, index = heapq.heappop(self._heap)
            due.append((s, index))
            period, phase = self._streams[s][2], self._streams[s][3]
            heapq.heappush(self._heap, (phase + (index + 1) * period, s, index + 1))
        self.position = offset
        t = self.world.start_s + offset
        world_state = self.world.advance(t)
        state = world_state.vehicles
        if world_state.t < t - 1e-9:  # between two steps of a world that has none (SUMO)
            state = _moved_on(state, t)
        needs_boxes = any(self._streams[s][0] in ("gt", "rsu", "cav") for s, _ in due)
        boxes = state.boxes() if needs_boxes else None
        tick = Tick(t)
        scans: list[tuple[str, str, int]] = []
        for s, index in due:
            kind, sid = self._streams[s][0], self._streams[s][1]
            if kind == "gt":
                tick.ground_truth = GroundTruth(t, state, boxes, world_state.in_area, world_state.signals)
            elif kind == "servers":
                tick.servers = self.world.server_truth(state)
            elif kind == "v2x":
                tick.v2x = self._v2x(state, t, index)
            elif kind == "odom":
                odo = self._odometry(self._cavs[sid], state, t, index)
                if odo is not None:
                    tick.odometry.append(odo)
            else:
                scans.append((kind, sid, index))
        if scans:
            tick.frames = self._scan(scans, state, boxes, t)
        return tick

    def _scan(self, due: list[tuple[str, str, int]], state: VehicleStates, boxes: Boxes, t: float) -> list[SensorFrame]:
        frames: list[SensorFrame] = []
        for lidar, kind in ((self.rsu_lidar, "rsu"), (self.cav_lidar, "cav")):
            poses, rngs, exclude, meta = [], [], [], []
            for k, sid, index in due:
                if k != kind:
                    continue
                if kind == "rsu":
                    pose = SensorPose(*self._rsus[sid].extrinsic)
                    own = None
                    frame_id = self._rsus[sid].frame_id
                else:
                    cav = self._cavs[sid]
                    own = self.world.cav_vehicle(sid, state)  # its LiDAR does not see its own body
                    if own is None:
                        continue  # the CAV is not on the road now
                    pose = SensorPose(float(state.x[own]), float(state.y[own]), cav.lidar_height_m,
                                      float(state.heading[own]))
                    frame_id = cav.frame_id
                poses.append(pose)
                rngs.append(np.random.default_rng([self.world.scenario.seed, 1, self._sensor_index[sid], index]))
                exclude.append(own)
                meta.append((sid, frame_id, index, pose))
            for (sid, frame_id, index, pose), scan in zip(meta, lidar.scan_many(poses, boxes, rngs, exclude),
                                                          strict=True):
                frames.append(SensorFrame(sid, kind, frame_id, t, index, pose, scan, boxes.ids))
        return frames

    def _v2x(self, state: VehicleStates, t: float, index: int) -> list[V2xReport]:
        cfg = self.world.scenario.v2x
        if self._cav_vehicles is None or not self.world.seekable:  # SUMO: a CAV has an id once it departed
            self._cav_vehicles = self.world.cav_vehicle_ids()
        cav_ids = self._cav_vehicles  # CAVs report themselves through their own perception
        connected = np.array([self.world.is_connected(int(i)) and int(i) not in cav_ids for i in state.ids],
                             dtype=bool)
        connected &= state.vehicles_only()  # pedestrians carry no V2X unit
        if not connected.any():
            return []
        serving = self.world.serving_server(state.x[connected], state.y[connected])
        rng = np.random.default_rng([self.world.scenario.seed, 3, index])
        n = int(connected.sum())
        x = state.x[connected] + rng.normal(0, cfg.position_noise_m, n)
        y = state.y[connected] + rng.normal(0, cfg.position_noise_m, n)
        vx, vy = state.velocity()
        vx = vx[connected] + rng.normal(0, cfg.speed_noise_mps, n)
        vy = vy[connected] + rng.normal(0, cfg.speed_noise_mps, n)
        ids, heading = state.ids[connected], state.heading[connected]
        reports = []
        for k, server in enumerate(self.world.edge_servers):
            sel = serving == k
            if sel.any():
                reports.append(V2xReport(server.server_id, t, ids[sel], x[sel], y[sel], heading[sel], vx[sel], vy[sel],
                                         cfg.position_noise_m))
        return reports

    def _odometry(self, cav, state: VehicleStates, t: float, index: int) -> Odometry | None:
        row = self.world.cav_vehicle(cav.cav_id, state)
        if row is None:
            return None
        x, y, yaw, speed = float(state.x[row]), float(state.y[row]), float(state.heading[row]), float(state.speed[row])
        noise = self.world.scenario.cavs.odometry_noise
        rng = np.random.default_rng([self.world.scenario.seed, 2, self.world.cav_key(cav.cav_id), index])
        yaw_rate = 0.0 if state.yaw_rate is None else float(state.yaw_rate[row])  # the world's (T-Drive: next 0.5 s)
        return Odometry(
            cav.cav_id, cav.base_frame, t,
            x + rng.normal(0, noise.position_m), y + rng.normal(0, noise.position_m),
            _wrap(yaw + rng.normal(0, noise.heading_rad)), max(0.0, speed + rng.normal(0, noise.speed_mps)), yaw_rate,
            noise.position_m, noise.heading_rad, noise.speed_mps, x, y, yaw,
        )


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _moved_on(v: VehicleStates, t: float) -> VehicleStates:
    """The road users of ``v`` moved on to ``t`` (a fraction of a slot later) along their heading at their speed,
    turning at their yaw rate: the state of a world that has one only at its steps, at a time between two."""
    dt = t - v.t
    heading = v.heading if v.yaw_rate is None else v.heading + v.yaw_rate * dt
    mid = 0.5 * (v.heading + heading)
    return replace(v, t=t, x=v.x + v.speed * dt * np.cos(mid), y=v.y + v.speed * dt * np.sin(mid), heading=heading)


def time_dilated(tick: Tick, pace: float) -> Tick:
    """``tick`` with every reported velocity (V2X reports, odometry, ground truth) multiplied by ``pace``: sim
    seconds per second of the stamps. A hardware-in-the-loop replay that cannot keep real time slips its
    schedule (its stamps run ahead of sim time), so the world it shows moves ``pace`` times slower in stamp
    time; its messages must then say so, or a consumer that predicts a report with its velocity from its
    stamp overshoots (at pace 0.65 a V2X-only track ran a second ahead of the vehicle). ``pace`` 1: the same
    tick."""
    if pace == 1.0:
        return tick
    gt = tick.ground_truth
    if gt is not None:
        s = gt.state
        gt = replace(gt, state=replace(s, speed=s.speed * pace,
                                       yaw_rate=None if s.yaw_rate is None else s.yaw_rate * pace))
    return replace(tick, ground_truth=gt,
                   odometry=[replace(o, speed=o.speed * pace, yaw_rate=o.yaw_rate * pace) for o in tick.odometry],
                   v2x=[replace(r, vx=r.vx * pace, vy=r.vy * pace) for r in tick.v2x])


class Pace:
    """Sim seconds per stamp second over the last ``window_s`` of stamps (1 while the stamps keep sim time)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._marks: deque[tuple[float, float]] = deque()  # (stamp, sim time)

    def reset(self) -> None:
        self._marks.clear()

    def update(self, stamp: float, sim_t: float) -> float:
        marks = self._marks
        marks.append((stamp, sim_t))
        while len(marks) > 2 and stamp - marks[1][0] >= self.window_s:
            marks.popleft()
        d_stamp, d_sim = stamp - marks[0][0], sim_t - marks[0][1]
        if d_stamp <= 1e-6 or abs(d_sim - d_stamp) <= 1e-6:
            return 1.0
        return float(min(1.0, max(0.05, d_sim / d_stamp)))
