"""Trajectories of the SUMO world as a :class:`~mobility_twin_sim.fleet.Fleet`, for the ROS-free learners.

:func:`record_fleet` runs a scenario's SUMO world headless (no sensors) and samples every vehicle's position
every ``sample_s``: a dense fleet whose interpolation between samples is, to the sample, where SUMO drove it
(queues at lights, turns at junctions, slowing behind others), with the road network it drove on
(:meth:`SumoFleet.roads`, in the ``map`` frame) and its traffic lights' states (:meth:`SumoFleet.signals_at`). The recording is cached (it is the same for the same
scenario, window and steps), so that a benchmark re-run does not simulate again.

:func:`telematics` thins a fleet into what a telematics feed would report: a fix when the vehicle enters,
then one every ``period_s`` (a random phase per vehicle), as T-Drive's taxis report theirs. A relation
learner's ``telemetry`` regime sees the fleet through these fixes plus the RSUs, its ``truth`` regime
through the dense fleet.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mobility_twin_core import VEHICLE_CLASSES
from mobility_twin_sim.fleet import Fleet

#: What a recording file holds (and its version)
FORMAT = "mobility_twin.sumo_fleet"
VERSION = 4


@dataclasses.dataclass(frozen=True)
class SumoFleet:
    """A recorded fleet and the network it drove on: ``net_file`` (SUMO's) and ``frame`` (SUMO -> map); the
    traffic lights ``signal_ids`` with, at every sample time ``signal_t`` [T], their ``signal_state`` [T, N]
    (SUMO's state strings) and seconds to their next switch ``signal_next_s`` [T, N]; ``destination`` [V]:
    the last edge of each vehicle's route when it was first seen (in ``fleet.taxi_ids`` order; "" unknown),
    what a vehicle that shares its destination (a navigation app, a CAV) would tell the twin."""

    fleet: Fleet
    net_file: str
    frame: tuple[float, float, float, float]  # NetFrame (tx, ty, rotation, scale)
    signal_ids: tuple[str, ...] = ()
    signal_t: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    signal_state: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), dtype=str))
    signal_next_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    destination: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=str))

    def signals_at(self, t: float):
        """The :class:`~mobility_twin_sim.backend.SignalStates` of the last sample at or before ``t`` (no
        signals before the first)."""
        from mobility_twin_sim.backend import SignalStates

        k = int(np.searchsorted(self.signal_t, t + 1e-6, side="right")) - 1
        if k < 0 or not self.signal_ids:
            return SignalStates(t)
        n = len(self.signal_ids)
        return SignalStates(t, self.signal_ids, np.zeros(n), np.zeros(n), tuple(self.signal_state[k].tolist()),
                            np.zeros(n, np.int64), self.signal_next_s[k].copy())

    def roads(self, vclass: str = "passenger"):
        """The :class:`~mobility_twin_core.roads.RoadGraph` of the network, in the ``map`` frame."""
        from mobility_twin_core.roads import RoadGraph
        from mobility_twin_sim.sumo.network import NetFrame

        return RoadGraph.from_net_file(self.net_file, vclass).in_frame(NetFrame(*self.frame).to_map)


def record_fleet(scenario, *, start: str | None = None, duration_s: float | None = None, sample_s: float = 1.0,
                 step_s: float = 0.5, cache: bool = True, progress: Callable[[float, float], None] | None = None,
                 log: Callable[..., None] = print) -> SumoFleet:
    """The vehicles (cars, trucks, buses, motorcycles; not pedestrians or cyclists) of a ``world: {kind:
    sumo}`` scenario, sampled every ``sample_s`` from ``start`` (Beijing time, default the scenario's) for
    ``duration_s`` (default the scenario's), SUMO stepping every ``step_s``.

    ``cache``: read the recording from, or write it to, the SUMO cache. ``progress(done_s, total_s)`` is
    called about every simulated minute."""
    from mobility_twin_sim.sumo import tools
    from mobility_twin_sim.sumo.errors import ControlError
    from mobility_twin_sim.world import build_world

    if scenario.world.kind != "sumo":
        raise ValueError(f"scenario {scenario.name!r} is not a SUMO world (world.kind {scenario.world.kind!r})")
    if sample_s <= 0 or step_s <= 0:
        raise ValueError(f"sample_s and step_s must be positive, got {sample_s} and {step_s}")
    when = dataclasses.replace(scenario.time, start=start or scenario.time.start,
                               duration_s=float(duration_s or scenario.time.duration_s), slot_s=float(step_s))
    scenario = dataclasses.replace(scenario, time=when)
    key = tools.fingerprint(FORMAT, VERSION, dataclasses.asdict(scenario), sample_s)
    path = tools.cache_dir() / "fleets" / f"{scenario.name}-{key}.npz"
    if cache and path.exists():
        try:
            return load_fleet(path)
        except (ValueError, OSError, KeyError) as err:
            log(f"recording again: {err}")
    started = time.perf_counter()
    world = build_world(scenario, log=log)
    ids, ts, xs, ys = [], [], [], []
    sig_t, sig_state, sig_next, sig_ids = [], [], [], ()
    destination: dict[int, str] = {}
    try:
        t, end, last = world.start_s, world.end_s, world.start_s
        while t <= end + 1e-9:
            state = world.advance(t)
            v = state.vehicles
            if state.signals is not None and len(state.signals):
                sig_ids = state.signals.ids
                sig_t.append(t)
                sig_state.append(state.signals.state)
                sig_next.append(state.signals.next_switch_s)
            keep = np.isin(v.object_class, np.asarray(VEHICLE_CLASSES, dtype=v.object_class.dtype))
            for vid in v.ids[keep].tolist():
                if vid not in destination:
                    try:
                        route = world.backend.route_of(vid)
                    except ControlError:  # left between the step and the question
                        route = ()
                    destination[vid] = route[-1] if route else ""
            ids.append(v.ids[keep])
            ts.append(np.full(int(np.count_nonzero(keep)), t))
            xs.append(v.x[keep])
            ys.append(v.y[keep])
            if progress is not None and t - last >= 60.0:
                last = t
                progress(t - world.start_s, end - world.start_s)
            t += sample_s
        backend = world.backend
        net_file, f = str(backend.network.net_file), backend.frame
    finally:
        world.close()
    fleet = _fleet(np.concatenate(ids), np.concatenate(ts), np.concatenate(xs), np.concatenate(ys), sample_s)
    log(f"recorded {len(fleet)} vehicles, {len(fleet.t)} samples of {scenario.name} in "
        f"{time.perf_counter() - started:.0f} s")
    recorded = SumoFleet(fleet, net_file, (f.tx, f.ty, f.rotation, f.scale), tuple(sig_ids), np.asarray(sig_t, float),
                         np.asarray(sig_state, dtype=str).reshape(len(sig_t), len(sig_ids)),
                         np.asarray(sig_next, float).reshape(len(sig_t), len(sig_ids)),
                         np.asarray([destination.get(int(i), "") for i in fleet.taxi_ids], dtype=str))
    if cache:
        save_fleet(path, recorded)
    return recorded


def _fleet(ids: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray, max_gap_s: float) -> Fleet:
    """A fleet of samples in any order: grouped by vehicle, time-ordered within each."""
    order = np.lexsort((t, ids))
    ids, t, x, y = ids[order], t[order], x[order], y[order]
    vehicle_ids, counts = np.unique(ids, return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Fleet(vehicle_ids, offsets, t, x, y, max_gap_s=max_gap_s * 1.5)


def save_fleet(path: Path, recorded: SumoFleet) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    fleet = recorded.fleet
    np.savez_compressed(tmp, format=FORMAT, version=VERSION, taxi_ids=fleet.taxi_ids, offsets=fleet.offsets,
                        t=fleet.t, x=fleet.x, y=fleet.y, max_gap_s=fleet.max_gap_s, net_file=recorded.net_file,
                        frame=np.asarray(recorded.frame, float), signal_ids=np.asarray(recorded.signal_ids, dtype=str),
                        signal_t=recorded.signal_t, signal_state=recorded.signal_state,
                        signal_next_s=recorded.signal_next_s, destination=recorded.destination)
    tmp.replace(path)
    return path


def load_fleet(path: Path) -> SumoFleet:
    with np.load(path, allow_pickle=False) as z:
        if str(z["format"]) != FORMAT or int(z["version"]) != VERSION:
            raise ValueError(f"{path} is not a {FORMAT} file of version {VERSION}")
        fleet = Fleet(z["taxi_ids"], z["offsets"], z["t"], z["x"], z["y"], max_gap_s=float(z["max_gap_s"]))
        return SumoFleet(fleet, str(z["net_file"]), tuple(float(v) for v in z["frame"]),
                         tuple(z["signal_ids"].tolist()), z["signal_t"], z["signal_state"], z["signal_next_s"],
                         z["destination"])


def telematics(fleet: Fleet, period_s: float = 30.0, *, seed: int = 0) -> Fleet:
    """The fixes a telematics feed would report of ``fleet``: each vehicle's first sample, then one sample
    every ``period_s`` from a random phase (seeded). Between two of its fixes a vehicle counts as present
    (``max_gap_s`` a period and a half), so every vehicle of the dense fleet has a fix by the time it is
    there."""
    if period_s <= 0:
        raise ValueError(f"period_s must be positive, got {period_s}")
    n = len(fleet.taxi_ids)
    if len(fleet.t) == 0:
        return fleet
    track = np.repeat(np.arange(n), np.diff(fleet.offsets))
    first = fleet.t[fleet.offsets[:-1]][track]
    phase = np.random.default_rng(seed).uniform(0.0, period_s, n)[track]
    tick = np.floor((fleet.t - first + phase) / period_s)
    keep = np.ones(len(fleet.t), bool)
    keep[1:] = (tick[1:] != tick[:-1]) | (track[1:] != track[:-1])
    counts = np.bincount(track[keep], minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Fleet(fleet.taxi_ids, offsets, fleet.t[keep], fleet.x[keep], fleet.y[keep],
                 max_gap_s=max(1.5 * period_s, fleet.max_gap_s))
