"""The SUMO world: microscopic traffic on a road network, stepped in-process with libsumo.

:class:`SumoWorld` implements :class:`mobility_twin_sim.backend.WorldBackend`. On :meth:`~SumoWorld.open`
it resolves the network (generated and cached on first use), builds or reads the cached demand
(:func:`mobility_twin_sim.sumo.prepare.build_demand`), checks the network in a subprocess (a file libsumo
cannot parse would take the process down), starts libsumo with the scenario slot as SUMO's step, the
scenario seed, trip-info and surrogate-safety (``ssm``) outputs in the run folder, fits the network's
frame to ``map`` through SUMO's own projection, places the buildings, and simulates the warm-up.

Each slot, :meth:`~SumoWorld.advance` steps SUMO (motion is integrated every slot; drivers decide every
``action_step_s``, 0.5 s by default, SUMO's model of a reaction interval, which also makes a step about
four times cheaper than deciding every 0.1 s) and reads every vehicle and person through variable
subscriptions (position, angle, speed; one subscription per road user, made when it departs), the
signals through subscriptions on every traffic light, and returns a
:class:`~mobility_twin_sim.backend.WorldState` in the ``map`` frame with ground-truth ids (int, stable
for the run), object classes and real dimensions from the vehicle types. Same scenario, same seed, same
run: SUMO is deterministic for a given seed and inputs, and every choice made here (CAV routes, ids) is
drawn from generators seeded by the scenario seed.

CAVs (``cav_0`` ...) are vehicles of their own, inserted on roads inside the scenario area just before
it starts, and given a new destination inside the area whenever they near the end of their route, so
they stay for the whole scenario unless a command sends them elsewhere. Control
(:meth:`~SumoWorld.command`): route, target, speed, road/lane closures and slowdowns; a command naming
an unknown vehicle or edge, or asking for a route SUMO refuses, is rejected with a reason and counted.

libsumo is one simulation per process: opening a second :class:`SumoWorld` while one is open is an error.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from shapely import contains_xy
from shapely.geometry import Polygon, box

from mobility_twin_core.model import Cav, Layout, ObjectClass
from mobility_twin_sim.backend import (
    Command,
    CommandResult,
    HeadwayCommand,
    IncidentCommand,
    RouteCommand,
    SignalStates,
    SpeedCommand,
    StaticScene,
    TargetCommand,
    VehicleStates,
    WorldState,
)
from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.lidar import SensorPose, Structures
from mobility_twin_sim.sumo import tools
from mobility_twin_sim.sumo.buildings import BuildingRules, buildings_on_blocks, city_blocks, osm_buildings
from mobility_twin_sim.sumo.config import SumoWorldConfig
from mobility_twin_sim.sumo.demand import VEHICLE_TYPES
from mobility_twin_sim.sumo.errors import ControlError, NetworkError, SumoError
from mobility_twin_sim.sumo.network import NetFrame, Network, check_loads, load_network
from mobility_twin_sim.sumo.prepare import DemandBundle, build_demand
from mobility_twin_sim.tdrive import BEIJING

_OPEN: list[SumoWorld] = []  # libsumo holds one simulation per process
CAV_TYPE = "cav"
CAV_REPLAN_S = 1.0  # how often CAV destinations are checked


@dataclass(frozen=True)
class SumoSetup:
    """What the SUMO world takes from the scenario besides its ``world:`` section."""

    start: str = "2008-02-02 16:10:00"  # Beijing time of the scenario start (the clock)
    duration_s: float = 300.0
    slot_s: float = 0.1
    seed: int = 0
    area_box_m: tuple[float, float, float, float] = (-600.0, -600.0, 600.0, 600.0)
    origin: tuple[float, ...] = ()  # lon, lat of map; () = the network's own
    cav_count: int = 4
    cav_mount_height_m: float = 0.4
    cav_range_m: float = 60.0


def _unix(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()


class SumoWorld:
    """A SUMO simulation as a world backend. Use as a context manager, or call :meth:`open` / :meth:`close`."""

    kind = "sumo"
    seekable = False

    def __init__(self, config: SumoWorldConfig, setup: SumoSetup = SumoSetup(), *, layout: Layout | None = None,
                 run_dir: Path | None = None, log=print) -> None:
        config.validate()
        if config.kind != "sumo":
            raise SumoError(f"world.kind is {config.kind!r}: the SUMO world needs kind: sumo")
        self.config = config
        self.setup = setup
        self.log = log
        self.start_s = _unix(setup.start)
        self.end_s = self.start_s + setup.duration_s
        self.slot_s = setup.slot_s
        self._layout_in = layout
        self._run_dir = Path(run_dir) if run_dir else None
        self.is_open = False
        self.prepared = False
        self.counters: Counter = Counter()  # commands accepted / rejected by reason, incidents, CAV re-plans
        self._own_tau: dict[str, float] = {}  # drivers' own time gaps while a HeadwayCommand holds a longer one
        self.network: Network | None = None
        self.demand: DemandBundle | None = None
        self.frame: NetFrame | None = None

    # ------------------------------------------------------------------------------------------ lifecycle
    def __enter__(self) -> SumoWorld:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def prepare(self) -> SumoWorld:
        """Network, frame, demand, buildings and the planned layout, without starting the simulation: what
        :meth:`busiest_junctions` and a layout need (another process can place the RSUs of the world a
        simulator process will run). :meth:`open` prepares first when this was not called."""
        if self.prepared:
            return self
        cfg, setup = self.config, self.setup
        self.network = load_network(cfg.network)
        origin = tuple(setup.origin) if setup.origin else self.network.origin
        self.projection = LocalENU(*origin)
        check_loads(self.network.net_file)
        frame = self.network.frame if (self.network.frame is not None and origin == self.network.origin) else None
        if cfg.demand.kind == "tdrive":
            self.begin_s = _unix(cfg.demand.begin)
        else:
            self.begin_s = self.start_s - cfg.warmup_s
        if self.begin_s > self.start_s:
            raise SumoError(f"world.demand.begin ({cfg.demand.begin}) is after the scenario start ({setup.start})")
        if frame is None:  # fit the frame through SUMO's projection (needs the network loaded once)
            if _OPEN:
                raise SumoError("a SUMO world is already open in this process: the frame of another network "
                                "cannot be fitted now (libsumo runs one simulation per process)")
            frame = _fit_frame(self.network, self.projection)
        self.frame = frame
        self.demand = build_demand(self.network, frame, cfg.demand, seed=setup.seed, begin_s=self.begin_s,
                                   log=self.log) if cfg.demand.kind != "none" else None
        self.statics = StaticScene(self._structures(), self.network.label, self.network.synthetic, self.network.name)
        self._area = box(*self.setup.area_box_m)
        self._types = {t.type_id: t for t in VEHICLE_TYPES}
        self._cavs = [f"cav_{k}" for k in range(max(0, self.setup.cav_count))]  # inserted by open()
        self._tls = ()
        self._tl_xy = np.zeros((2, 0))
        self.layout = self._layout()
        self.prepared = True
        return self

    def open(self) -> SumoWorld:
        """Prepare (network, demand, buildings: built or read from the cache), start libsumo, simulate the
        warm-up."""
        if _OPEN:
            raise SumoError("a SUMO world is already open in this process (libsumo runs one simulation per "
                            "process): close it first")
        self.prepare()
        setup = self.setup
        default_dir = tools.cache_dir() / "runs" / f"{self.network.name}-{setup.seed}-{os.getpid()}"
        self.run_dir = Path(self._run_dir or default_dir).resolve()  # never the working directory
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._start_libsumo()
        self.is_open = True
        _OPEN.append(self)
        try:
            self._after_start()
        except BaseException:
            self.close()
            raise
        return self

    def _start_libsumo(self) -> None:
        import libsumo

        os.environ.setdefault("PROJ_DATA", str(tools.sumo_home() / "data" / "proj"))
        os.environ.setdefault("SUMO_HOME", str(tools.sumo_home()))
        cfg, setup = self.config, self.setup
        end = self.end_s - self.begin_s + 10 * self.slot_s
        args = ["sumo", "-n", str(self.network.net_file), "--begin", "0", "--end", f"{end:.3f}",
                "--step-length", f"{self.slot_s:g}", "--seed", str(setup.seed), "--no-step-log", "--no-warnings",
                "--default.action-step-length", f"{max(cfg.action_step_s, self.slot_s):g}",
                "--duration-log.disable", "--ignore-route-errors",
                "--time-to-teleport", f"{cfg.teleport_s:g}" if cfg.teleport_s > 0 else "-1",
                "--collision.action", "warn", "--pedestrian.model", "striping",
                "--tripinfo-output", str(self.run_dir / "tripinfo.xml"),
                "--statistic-output", str(self.run_dir / "stats.xml"),
                "--device.ssm.probability", f"{cfg.ssm_probability:g}",
                "--device.ssm.file", str(self.run_dir / "ssm.xml"),
                "--device.ssm.measures", "TTC DRAC PET", "--device.ssm.range", "50",
                "--device.ssm.trajectories", "true" if cfg.ssm_trajectories else "false"]
        if self.demand is not None:
            args += ["-r", ",".join(str(p) for p in self.demand.route_files), "-a", str(self.demand.vtypes_file)]
        else:
            from mobility_twin_sim.sumo.demand import write_vtypes

            args += ["-a", str(write_vtypes(self.run_dir / "vtypes.add.xml"))]
        self._red_types = self._write_red_light_types()
        if self._red_types:
            args[-1] += f",{self.run_dir / 'drivers.add.xml'}"
        try:
            libsumo.start(args)
        except libsumo.TraCIException as err:
            raise SumoError(f"SUMO did not start on {self.network.net_file}: {err}") from None

    def _after_start(self) -> None:
        import libsumo

        self._sumo = libsumo
        self._edges = frozenset(e for e in libsumo.edge.getIDList() if not e.startswith(":"))
        self._types = {t.type_id: t for t in VEHICLE_TYPES}
        self._num = {}  # SUMO id -> ground-truth id
        self._names: dict[int, str] = {}
        self._rows: dict[str, tuple[int, float, float, float]] = {}  # id -> (class, length, width, height)
        self._present_veh: set[str] = set()
        self._present_per: set[str] = set()
        self._last_heading: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.int64), np.zeros(0))
        libsumo.simulation.subscribe([libsumo.VAR_DEPARTED_VEHICLES_IDS, libsumo.VAR_ARRIVED_VEHICLES_IDS,
                                      libsumo.VAR_DEPARTED_PERSONS_IDS, libsumo.VAR_ARRIVED_PERSONS_IDS])
        self._tls = tuple(sorted(libsumo.trafficlight.getIDList()))
        xy = []
        for tl in self._tls:
            try:
                p = libsumo.junction.getPosition(tl)
            except libsumo.TraCIException:
                lanes = libsumo.trafficlight.getControlledLanes(tl)
                shape = libsumo.lane.getShape(lanes[0]) if lanes else [(0.0, 0.0)]
                p = shape[-1]
            xy.append(p)
            libsumo.trafficlight.subscribe(tl, [libsumo.TL_RED_YELLOW_GREEN_STATE, libsumo.TL_CURRENT_PHASE,
                                                libsumo.TL_NEXT_SWITCH])
        xy = np.asarray(xy, float).reshape(-1, 2)
        self._tl_xy = self.frame.to_map(xy[:, 0], xy[:, 1]) if len(xy) else np.zeros((2, 0))
        self._incidents = sorted(self.config.incidents, key=lambda i: i.at_s)
        for i, inc in enumerate(self._incidents):
            if inc.edge not in self._edges:
                raise NetworkError(f"world.incidents[{i}].edge: no edge {inc.edge!r} in {self.network.name} "
                                   f"(e.g. {', '.join(sorted(self._edges)[:3])})")
        self._incident_next = 0
        self._restore: list[tuple[float, str]] = []  # (UNIX time, edge) of scheduled reopenings
        self._open_incidents: dict[str, list] = {}  # edge -> [(kind, saved permissions or speeds, lane)]
        self._cavs = self._insert_cavs()
        self._imperfect_drivers()
        self.layout = self._layout()
        self._t = self.begin_s
        self._state: WorldState | None = None
        warm = self.start_s - self.begin_s
        if warm > 0:
            self.log(f"SUMO warm-up: {warm:.0f} s of simulated traffic before the scenario starts ...")
            started = time.perf_counter()
            self.advance(self.start_s, read=False)
            self.log(f"  warm-up done in {time.perf_counter() - started:.1f} s, "
                     f"{libsumo.vehicle.getIDCount()} vehicles, {libsumo.person.getIDCount()} persons on the road")

    def _write_red_light_types(self) -> tuple[str, ...]:
        """``drivers.red_light_share`` > 0: ``<type>_red`` for each driven type, the same vehicle with SUMO's
        ``jmDriveAfterRedTime`` (a junction-model attribute of the type: a vehicle cannot be given it alone),
        written to the run folder; a departing vehicle drawn as a violator is switched to it."""
        import xml.etree.ElementTree as ET

        dr = self.config.drivers
        if dr.red_light_share <= 0:
            return ()
        root = ET.Element("additional")
        names = []
        for t in VEHICLE_TYPES:
            if t.type_id in (CAV_TYPE, "bicycle", "pedestrian"):
                continue
            el = ET.SubElement(root, "vType", id=f"{t.type_id}_red", vClass=t.vclass, length=f"{t.length_m}",
                               width=f"{t.width_m}", height=f"{t.height_m}",
                               jmDriveAfterRedTime=f"{dr.red_light_time_s:g}")
            if t.max_speed_mps:
                el.set("maxSpeed", f"{t.max_speed_mps}")
            if dr.sigma >= 0:
                el.set("sigma", f"{dr.sigma:g}")
            if dr.tau > 0:
                el.set("tau", f"{dr.tau:g}")
            names.append(t.type_id)
        ET.ElementTree(root).write(self.run_dir / "drivers.add.xml", encoding="UTF-8", xml_declaration=True)
        return tuple(names)

    def _imperfect_drivers(self) -> None:
        """The ``drivers`` section: sigma and tau on every vehicle type but CAVs, bicycles and pedestrians; the
        red-light share is drawn per departing vehicle (seeded) in :meth:`_track_departures`."""
        sumo, dr = self._sumo, self.config.drivers
        for vt in VEHICLE_TYPES:
            if vt.type_id in (CAV_TYPE, "bicycle", "pedestrian") or vt.type_id not in sumo.vehicletype.getIDList():
                continue
            if dr.sigma >= 0:
                sumo.vehicletype.setImperfection(vt.type_id, dr.sigma)
            if dr.tau > 0:
                sumo.vehicletype.setTau(vt.type_id, dr.tau)
        self._red_rng = np.random.default_rng([self.setup.seed, 41]) if self._red_types else None

    def close(self) -> dict:
        """Stop SUMO (it writes its trip info and ssm files) and report what was written and counted."""
        if not self.is_open:
            return {}
        try:
            self._sumo.close()
        finally:
            self.is_open = False
            if self in _OPEN:
                _OPEN.remove(self)
        outputs = {name: str(self.run_dir / name) for name in ("tripinfo.xml", "ssm.xml", "stats.xml")
                   if (self.run_dir / name).exists()}
        return {"outputs": outputs, "counters": dict(self.counters)}

    # ------------------------------------------------------------------------------------------ layout and statics
    def _structures(self) -> Structures | None:
        b = self.config.buildings
        kind = b.kind
        poly = Path(b.poly_file) if b.poly_file else self.network.poly_file
        if kind == "none":
            return None
        if kind in ("auto", "osm") and poly is not None and Path(poly).is_file():
            return osm_buildings(Path(poly), self.frame)
        if kind == "osm":
            raise NetworkError(f"world.buildings.kind is osm but there is no polygon file for {self.network.name}")
        key = tools.fingerprint("blocks-v1", str(self.network.net_file), self.network.net_file.stat().st_size,
                                b.setback_m, self.frame.tx, self.frame.ty, self.frame.rotation)
        cache = tools.cache_dir() / "blocks" / f"{self.network.name}-{key}.npz"
        if cache.exists():
            raw = np.load(cache, allow_pickle=False)
            blocks = [Polygon(raw[k]) for k in sorted(raw.files, key=lambda s: int(s[1:]))]
        else:
            blocks = city_blocks(self.network.net_file, self.frame, setback_m=b.setback_m)
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **{f"b{i}": np.asarray(p.exterior.coords) for i, p in enumerate(blocks)})
        rules = BuildingRules(setback_m=b.setback_m, lot_m=b.lot_m, gap_m=b.gap_m, height_m=tuple(b.height_m),
                              seed=self.setup.seed)
        return buildings_on_blocks(blocks, rules)

    def _layout(self) -> Layout:
        """The layout given to the world, with the CAVs replaced by this world's CAVs; or CAVs alone."""
        cav_type = self._types[CAV_TYPE]
        cavs = tuple(Cav(c, cav_type.height_m + self.setup.cav_mount_height_m, self.setup.cav_range_m)
                     for c in self._cavs)
        if self._layout_in is not None:
            from dataclasses import replace

            return replace(self._layout_in, cavs=cavs)
        area = tuple(tuple(p) for p in self._area.exterior.coords)
        return Layout(cavs=cavs, area=area, origin=(self.projection.origin_lat, self.projection.origin_lon),
                      name=self.network.name)

    def set_layout(self, layout: Layout) -> None:
        """Take the scenario's infrastructure (RSUs, edge servers, sites, cloud, area) once it is placed (RSUs
        typically at :meth:`busiest_junctions`); the CAVs stay this world's own. May be called once prepared,
        before or after :meth:`open`."""
        from dataclasses import replace

        self._layout_in = layout
        self.layout = replace(layout, cavs=self.layout.cavs).validated()

    def busiest_junctions(self, count: int, min_separation_m: float = 60.0, *, signalised: bool = True
                          ) -> list[tuple[str, float, float]]:
        """The ``count`` junctions inside the area that the demand's routes cross most (at least
        ``min_separation_m`` apart): (junction id, x, y in map). Where a scenario's RSUs go."""
        import sumolib

        net = sumolib.net.readNet(str(self.network.net_file), withInternal=False)
        load: Counter = Counter()
        for path in self.demand.route_files if self.demand else ():
            for _, el in _iter_routes(path):
                for e in el:
                    if net.hasEdge(e):
                        load[net.getEdge(e).getToNode().getID()] += 1
        chosen: list[tuple[str, float, float]] = []
        for node_id, _ in sorted(load.items(), key=lambda kv: (-kv[1], kv[0])):
            node = net.getNode(node_id)
            if signalised and node.getType() not in ("traffic_light", "traffic_light_right_on_red",
                                                     "traffic_light_unregulated"):
                continue
            x, y = self.frame.to_map(*node.getCoord())
            if not contains_xy(self._area, float(x), float(y)):
                continue
            if all(math.hypot(x - cx, y - cy) >= min_separation_m for _, cx, cy in chosen):
                chosen.append((node_id, float(x), float(y)))
                if len(chosen) == count:
                    break
        return chosen

    # ------------------------------------------------------------------------------------------ CAVs
    def _area_edges(self) -> list[str]:
        sumo = self._sumo
        edges = []
        for e in sorted(self._edges):
            lanes = sumo.edge.getLaneNumber(e)
            if lanes < 1:
                continue
            lane = f"{e}_{lanes - 1}"
            if "passenger" not in sumo.lane.getAllowed(lane) and sumo.lane.getAllowed(lane):
                continue
            if sumo.lane.getLength(lane) < 60.0:
                continue
            shape = np.asarray(sumo.lane.getShape(lane), float)
            mx, my = self.frame.to_map(shape[:, 0], shape[:, 1])
            if contains_xy(self._area, float(mx.mean()), float(my.mean())):
                edges.append(e)
        return edges

    def _insert_cavs(self) -> list[str]:
        n = self.setup.cav_count
        if n <= 0:
            return []
        self._cav_edges = self._area_edges()
        if not self._cav_edges:
            raise NetworkError(f"no road for CAVs inside the scenario area {self.setup.area_box_m} of {self.network.name}")
        rng = np.random.default_rng([self.setup.seed, 31])
        depart = max(0.0, self.start_s - self.begin_s - 60.0)
        ids = []
        for k in range(n):
            cav = f"cav_{k}"
            edge = self._cav_edges[int(rng.integers(len(self._cav_edges)))]
            self._sumo.route.add(f"{cav}_route0", [edge])
            self._sumo.vehicle.add(cav, f"{cav}_route0", typeID=CAV_TYPE, depart=f"{depart:.1f}", departLane="best",
                                   departPos="random_free", departSpeed="0")
            ids.append(cav)
        self._cav_rng = {c: np.random.default_rng([self.setup.seed, 37, k]) for k, c in enumerate(ids)}
        self._commanded: set[str] = set()  # CAVs driving a commanded route or to a commanded destination
        self._cav_next_check = 0.0
        for c in ids:
            self._new_target(c)
        return ids

    def _new_target(self, cav: str) -> None:
        sumo = self._sumo
        rng = self._cav_rng[cav]
        for _ in range(20):
            target = self._cav_edges[int(rng.integers(len(self._cav_edges)))]
            try:
                route = sumo.vehicle.getRoute(cav)
                if route and target == route[-1]:
                    continue
                sumo.vehicle.changeTarget(cav, target)
                self.counters["cav_new_destination"] += 1
                return
            except sumo.TraCIException:
                continue
        self.counters["cav_no_destination"] += 1

    def _replan_cavs(self) -> None:
        """A CAV nearing the end of its route gets a new destination in the area (so it stays); one whose route
        was commanded drives it to its last road first (the command is kept whole)."""
        sumo = self._sumo
        for cav in self._cavs:
            if cav not in self._present_veh:
                continue
            route = sumo.vehicle.getRoute(cav)
            last = len(route) - (1 if cav in self._commanded else 2)
            if sumo.vehicle.getRouteIndex(cav) >= last:
                self._commanded.discard(cav)
                self._new_target(cav)

    # ------------------------------------------------------------------------------------------ stepping
    def advance(self, t: float, *, read: bool = True) -> WorldState | None:
        """Step SUMO to the last step at or before ``t`` (UNIX s) and return the world there (``state.t`` is
        that step's time: a time between two slots gets the earlier slot, never a future one).
        ``read=False`` skips building the state (warm-up)."""
        if not self.is_open:
            raise SumoError("the SUMO world is not open")
        if t < self._t - 1e-6:
            raise SumoError(f"the SUMO world cannot go back in time (asked {t - self.start_s:.2f} s, it is at "
                            f"{self._t - self.start_s:.2f} s after the scenario start)")
        sumo = self._sumo
        target = t - self.begin_s
        stepped = False
        while sumo.simulation.getTime() + self.slot_s <= target + 1e-6:
            stepped = True
            sumo.simulationStep()
            self._t = self.begin_s + sumo.simulation.getTime()
            self._track_departures()
            self._scheduled()
            if self._cavs and self._t >= self._cav_next_check:
                self._cav_next_check = self._t + CAV_REPLAN_S
                self._replan_cavs()
        if not read:
            return None
        if stepped or self._state is None:
            self._state = self._read()
        return self._state

    @property
    def state(self) -> WorldState | None:
        return self._state

    def _track_departures(self) -> None:
        sumo = self._sumo
        res = sumo.simulation.getSubscriptionResults()
        for vid in res[sumo.VAR_DEPARTED_VEHICLES_IDS]:
            sumo.vehicle.subscribe(vid, [sumo.VAR_POSITION, sumo.VAR_ANGLE, sumo.VAR_SPEED])
            self._register(vid, sumo.vehicle.getTypeID(vid))
            self._present_veh.add(vid)
            if self._red_rng is not None and self._red_rng.random() < self.config.drivers.red_light_share:
                base = sumo.vehicle.getTypeID(vid).split("@")[0]
                if base in self._red_types:  # the same type with jmDriveAfterRedTime (drivers.add.xml)
                    sumo.vehicle.setType(vid, f"{base}_red")
                    self.counters["red_light_violators"] += 1
        for vid in res[sumo.VAR_ARRIVED_VEHICLES_IDS]:
            self._present_veh.discard(vid)
            self._own_tau.pop(vid, None)  # (a HeadwayCommand's hold ends with the vehicle)
        for pid in res[sumo.VAR_DEPARTED_PERSONS_IDS]:
            sumo.person.subscribe(pid, [sumo.VAR_POSITION, sumo.VAR_ANGLE, sumo.VAR_SPEED])
            self._register(pid, sumo.person.getTypeID(pid))
            self._present_per.add(pid)
        for pid in res[sumo.VAR_ARRIVED_PERSONS_IDS]:
            self._present_per.discard(pid)

    def _register(self, sumo_id: str, type_id: str) -> None:
        if sumo_id in self._num:
            return
        num = len(self._num) + 1
        self._num[sumo_id] = num
        self._names[num] = sumo_id
        vt = self._types.get(type_id.split("@")[0])
        if vt is None:  # a type from an outside route file: ask SUMO for its size
            sumo = self._sumo
            domain = sumo.vehicletype
            vclass = domain.getVehicleClass(type_id)
            cls = {"pedestrian": ObjectClass.PEDESTRIAN, "bus": ObjectClass.BUS, "truck": ObjectClass.TRUCK,
                   "bicycle": ObjectClass.MOTORCYCLE, "motorcycle": ObjectClass.MOTORCYCLE}.get(vclass, ObjectClass.CAR)
            self._rows[sumo_id] = (int(cls), domain.getLength(type_id), domain.getWidth(type_id),
                                   domain.getHeight(type_id))
        else:
            self._rows[sumo_id] = (int(vt.object_class), vt.length_m, vt.width_m, vt.height_m)

    def _read(self) -> WorldState:
        sumo = self._sumo
        veh = sumo.vehicle.getAllSubscriptionResults()
        per = sumo.person.getAllSubscriptionResults()
        keys = [*veh, *per]
        vals = [*veh.values(), *per.values()]
        n = len(keys)
        P, A, S = sumo.VAR_POSITION, sumo.VAR_ANGLE, sumo.VAR_SPEED
        pos = np.array([r[P] for r in vals], dtype=float).reshape(n, 2)
        angle = np.fromiter((r[A] for r in vals), dtype=float, count=n)
        speed = np.fromiter((r[S] for r in vals), dtype=float, count=n)
        rows = np.array([self._rows[k] for k in keys], dtype=float).reshape(n, 4)
        num = self._num
        ids = np.fromiter((num[k] for k in keys), dtype=np.int64, count=n)
        order = np.argsort(ids, kind="stable")  # a stable row order: by ground-truth id
        ids, pos, angle, speed, rows = ids[order], pos[order], angle[order], speed[order], rows[order]
        x, y = self.frame.to_map(pos[:, 0], pos[:, 1]) if n else (np.zeros(0), np.zeros(0))
        heading = self.frame.heading_to_map(angle) if n else np.zeros(0)
        # SUMO gives the front bumper position: the box centre is half a length behind it
        x = x - 0.5 * rows[:, 1] * np.cos(heading)
        y = y - 0.5 * rows[:, 1] * np.sin(heading)
        yaw_rate = np.zeros(n)
        prev_ids, prev_heading = self._last_heading
        if len(prev_ids) and n:  # both sorted by id: match rows by search
            k = np.minimum(np.searchsorted(prev_ids, ids), len(prev_ids) - 1)
            seen = prev_ids[k] == ids
            turn = (heading[seen] - prev_heading[k[seen]] + math.pi) % (2 * math.pi) - math.pi
            yaw_rate[seen] = turn / self.slot_s
        self._last_heading = (ids, heading)
        vehicles = VehicleStates(self._t, ids, x, y, heading, speed, rows[:, 0].astype(np.uint8), rows[:, 1],
                                 rows[:, 2], rows[:, 3], yaw_rate)
        return WorldState(self._t, vehicles, self._signals(), contains_xy(self._area, x, y))

    def _signals(self) -> SignalStates:
        sumo = self._sumo
        res = sumo.trafficlight.getAllSubscriptionResults()
        now = sumo.simulation.getTime()
        states, phases, nxt = [], [], []
        for tl in self._tls:
            r = res.get(tl, {})
            states.append(r.get(sumo.TL_RED_YELLOW_GREEN_STATE, ""))
            phases.append(r.get(sumo.TL_CURRENT_PHASE, -1))
            nxt.append(r.get(sumo.TL_NEXT_SWITCH, now) - now)
        return SignalStates(self._t, self._tls, self._tl_xy[0], self._tl_xy[1], tuple(states),
                            np.asarray(phases, dtype=np.int64), np.asarray(nxt, float))

    # ------------------------------------------------------------------------------------------ CAV queries
    def cav_vehicle(self, cav_id: str, state: WorldState) -> int | None:
        num = self._num.get(cav_id)
        return None if num is None else state.vehicles.index_of(num)

    def cav_lidar_pose(self, cav_id: str, state: WorldState) -> SensorPose | None:
        row = self.cav_vehicle(cav_id, state)
        if row is None:
            return None
        v = state.vehicles
        return SensorPose(float(v.x[row]), float(v.y[row]), float(v.height[row]) + self.setup.cav_mount_height_m,
                          float(v.heading[row]))

    def vehicle_id(self, sumo_id: str) -> int | None:
        """Ground-truth id of a SUMO vehicle or person (None before it departed)."""
        return self._num.get(sumo_id)

    def sumo_id(self, vehicle_id: int) -> str | None:
        return self._names.get(int(vehicle_id))

    def body(self, vehicle_id: int) -> tuple[int, float, float, float] | None:
        """(object class, length, width, height in m) of a road user by ground-truth id; None if never seen."""
        name = self._names.get(int(vehicle_id))
        return None if name is None else self._rows[name]

    # ------------------------------------------------------------------------------------------ control
    def command(self, command: Command) -> CommandResult:
        """Apply ``command``; an unknown vehicle or edge, or a route SUMO refuses, is a counted rejection."""
        try:
            if isinstance(command, RouteCommand):
                self.change_route(command.vehicle, command.edges)
            elif isinstance(command, TargetCommand):
                self.change_target(command.vehicle, command.edge)
            elif isinstance(command, SpeedCommand):
                self.set_speed(command.vehicle, command.speed_mps)
            elif isinstance(command, HeadwayCommand):
                self.set_headway(command.vehicle, command.headway_s)
            elif isinstance(command, IncidentCommand):
                self.incident(command.kind, command.edge, lane=command.lane, speed_mps=command.speed_mps,
                              duration_s=command.duration_s)
            else:
                raise ControlError(f"unknown command type {type(command).__name__}")
        except ControlError as err:
            reason = str(err)
            self.counters[f"rejected:{reason.split(':')[0]}"] += 1
            return CommandResult(False, reason, command)
        self.counters[f"accepted:{type(command).__name__}"] += 1
        return CommandResult(True, "", command)

    def _vehicle(self, vehicle: int | str) -> str:
        name = self._names.get(vehicle) if isinstance(vehicle, int | np.integer) else str(vehicle)
        if name is None or name not in self._present_veh:
            raise ControlError(f"unknown vehicle: {vehicle!r} is not on the road "
                               f"({len(self._present_veh)} vehicles are)")
        return name

    def _edge(self, edge: str) -> str:
        if edge not in self._edges:
            raise ControlError(f"unknown edge: {edge!r} is not a road of {self.network.name}")
        return edge

    def change_route(self, vehicle: int | str, edges) -> None:
        """Drive along ``edges`` from the current road (prepended when the list does not start there)."""
        name = self._vehicle(vehicle)
        edges = [self._edge(e) for e in edges]
        if not edges:
            raise ControlError("empty route: give at least one edge")
        sumo = self._sumo
        current = sumo.vehicle.getRoadID(name)
        if current.startswith(":"):  # inside a junction: the route continues from the next edge of the old route
            route = sumo.vehicle.getRoute(name)
            current = route[min(sumo.vehicle.getRouteIndex(name), len(route) - 1)]
        if current in edges:
            edges = edges[edges.index(current):]
        else:
            edges = [current, *edges]
        try:
            sumo.vehicle.setRoute(name, edges)
            if name in self._cavs:
                self._commanded.add(name)
        except sumo.TraCIException as err:
            raise ControlError(f"route refused: {err}") from None

    def change_target(self, vehicle: int | str, edge: str) -> None:
        name = self._vehicle(vehicle)
        sumo = self._sumo
        try:
            sumo.vehicle.changeTarget(name, self._edge(edge))
        except sumo.TraCIException as err:
            raise ControlError(f"no route: {err}") from None
        if name in self._cavs:
            self.counters["cav_commanded_target"] += 1
            self._commanded.add(name)

    def set_speed(self, vehicle: int | str, speed_mps: float) -> None:
        name = self._vehicle(vehicle)
        if not math.isfinite(speed_mps):
            raise ControlError(f"bad speed: {speed_mps!r}")
        self._sumo.vehicle.setSpeed(name, float(speed_mps))

    def set_headway(self, vehicle: int | str, headway_s: float) -> None:
        """The vehicle's desired time gap (SUMO's tau) raised to ``headway_s`` (never lowered below its
        driver's); negative: its driver's own back."""
        name = self._vehicle(vehicle)
        if not math.isfinite(headway_s):
            raise ControlError(f"bad headway: {headway_s!r}")
        own = self._own_tau.get(name)
        if headway_s < 0:
            if own is not None:
                self._sumo.vehicle.setTau(name, own)
                del self._own_tau[name]
            return
        if own is None:
            own = self._own_tau[name] = float(self._sumo.vehicle.getTau(name))
        self._sumo.vehicle.setTau(name, max(float(headway_s), own))

    def find_route(self, from_edge: str, to_edge: str, vtype: str = "car") -> tuple[str, ...]:
        """SUMO's fastest route now between two edges (empty when there is none)."""
        sumo = self._sumo
        try:
            return tuple(sumo.simulation.findRoute(self._edge(from_edge), self._edge(to_edge), vType=vtype).edges)
        except sumo.TraCIException:
            return ()

    def route_of(self, vehicle: int | str) -> tuple[str, ...]:
        """The remaining route (current road first)."""
        name = self._vehicle(vehicle)
        route = self._sumo.vehicle.getRoute(name)
        return tuple(route[self._sumo.vehicle.getRouteIndex(name):])

    def road_of(self, vehicle: int | str) -> str:
        return self._sumo.vehicle.getRoadID(self._vehicle(vehicle))

    def incident(self, kind: str, edge: str, *, lane: int = 0, speed_mps: float = 2.0, duration_s: float = 0.0) -> None:
        """Close a road or a lane, slow an edge down, or ``reopen`` it; vehicles whose remaining route uses a
        closed road are rerouted."""
        sumo = self._sumo
        self._edge(edge)
        lanes = sumo.edge.getLaneNumber(edge)
        if kind == "close_road":
            saved = tuple(sumo.lane.getAllowed(f"{edge}_{i}") for i in range(lanes))
            for i in range(lanes):
                sumo.lane.setAllowed(f"{edge}_{i}", ["authority"])
            self._reroute_around(edge)
            self._schedule_restore(duration_s, edge)
        elif kind == "close_lane":
            if not 0 <= lane < lanes:
                raise ControlError(f"unknown lane: {edge} has lanes 0..{lanes - 1}, not {lane}")
            saved = (sumo.lane.getAllowed(f"{edge}_{lane}"),)
            sumo.lane.setAllowed(f"{edge}_{lane}", ["authority"])
            self._schedule_restore(duration_s, edge)
        elif kind == "slowdown":
            if not (math.isfinite(speed_mps) and speed_mps > 0):
                raise ControlError(f"bad speed: {speed_mps!r}")
            saved = tuple(sumo.lane.getMaxSpeed(f"{edge}_{i}") for i in range(lanes))
            sumo.edge.setMaxSpeed(edge, float(speed_mps))
            self._schedule_restore(duration_s, edge)
        elif kind == "reopen":
            self._reopen(edge)
            return
        else:
            raise ControlError(f"unknown incident kind: {kind!r} (close_road, close_lane, slowdown, reopen)")
        self._open_incidents.setdefault(edge, []).append((kind, saved, lane))
        self.counters[f"incident:{kind}"] += 1

    def _reopen(self, edge: str) -> None:
        sumo = self._sumo
        for kind, saved, lane in reversed(self._open_incidents.pop(edge, [])):
            if kind == "close_road":
                for i, allowed in enumerate(saved):
                    sumo.lane.setAllowed(f"{edge}_{i}", list(allowed))
            elif kind == "close_lane":
                sumo.lane.setAllowed(f"{edge}_{lane}", list(saved[0]))
            elif kind == "slowdown":
                for i, v in enumerate(saved):
                    sumo.lane.setMaxSpeed(f"{edge}_{i}", v)
        self.counters["incident:reopen"] += 1

    def _schedule_restore(self, duration_s: float, edge: str) -> None:
        """Reopen ``edge`` (every incident on it) ``duration_s`` from now; 0: stays until reopened."""
        if duration_s > 0:
            self._restore.append((self._t + duration_s, edge))
            self._restore.sort()

    def _reroute_around(self, edge: str) -> None:
        sumo = self._sumo
        for vid in sorted(self._present_veh):
            route = sumo.vehicle.getRoute(vid)
            idx = sumo.vehicle.getRouteIndex(vid)
            if edge in route[idx + 1:]:
                try:
                    sumo.vehicle.rerouteTraveltime(vid)
                    self.counters["rerouted_around_incident"] += 1
                except sumo.TraCIException:
                    self.counters["no_route_around_incident"] += 1

    def _scheduled(self) -> None:
        while self._incident_next < len(self._incidents) and \
                self._t >= self.start_s + self._incidents[self._incident_next].at_s - 1e-9:
            inc = self._incidents[self._incident_next]
            self._incident_next += 1
            try:
                self.incident(inc.kind, inc.edge, lane=inc.lane, speed_mps=inc.speed_mps, duration_s=inc.duration_s)
            except ControlError as err:
                self.counters[f"rejected:incident {err}"] += 1
        while self._restore and self._t >= self._restore[0][0]:
            _, edge = self._restore.pop(0)
            self._reopen(edge)

    # ------------------------------------------------------------------------------------------ description
    def describe(self) -> dict:
        """The static layout as plain data, labelled (synthetic networks say so)."""
        lay = self.layout
        st = self.statics.structures
        return {
            "world": "sumo", "network": self.network.name, "label": self.network.label,
            "synthetic": self.network.synthetic, "origin": [self.projection.origin_lon, self.projection.origin_lat],
            "area": [list(p) for p in self._area.exterior.coords], "start_s": self.start_s, "end_s": self.end_s,
            "rsus": [{"id": r.rsu_id, "x": r.x, "y": r.y, "z": r.z, "site": r.site_id, "frame": r.frame_id,
                      "range": r.range_m} for r in lay.rsus],
            "cavs": [{"id": c.cav_id, "frame": c.frame_id, "base_frame": c.base_frame, "range": c.range_m,
                      "lidar_height": c.lidar_height_m} for c in lay.cavs],
            "edge_servers": [{"id": e.server_id, "x": e.x, "y": e.y, "radius": e.coverage_radius_m, "cpu_hz": e.cpu_hz,
                              "site": e.site_id} for e in lay.servers],
            "sites": [{"id": s.site_id, "polygon": [list(p) for p in s.polygon]} for s in lay.sites],
            "signals": [{"id": tl, "x": float(x), "y": float(y)} for tl, x, y in
                        zip(self._tls, self._tl_xy[0], self._tl_xy[1], strict=True)],
            "buildings": [] if st is None else [{"id": i, "height": float(h), "footprint": f.tolist()}
                                                for i, h, f in zip(st.ids, st.heights, st.footprints, strict=True)],
            "demand": self.demand.info if self.demand else {},
        }


def _iter_routes(path: Path):
    """(vehicle id, route edges) of a SUMO route file (vehicles with embedded routes)."""
    import xml.etree.ElementTree as ET

    for _, el in ET.iterparse(path):
        if el.tag == "vehicle":
            r = el.find("route")
            if r is not None:
                yield el.get("id"), r.get("edges", "").split()
            el.clear()


def _fit_frame(network: Network, projection: LocalENU) -> NetFrame:
    """SUMO -> map, fitted on a 5 x 5 grid over the network through SUMO's own projection (a short libsumo
    session on the network alone; the network was checked to load first)."""
    import libsumo

    loc = network.location
    if loc is None or not loc.georeferenced:
        raise NetworkError(f"network {network.name} is not georeferenced: its frame cannot be matched to map")
    os.environ.setdefault("PROJ_DATA", str(tools.sumo_home() / "data" / "proj"))
    x0, y0, x1, y1 = loc.conv_boundary
    gx, gy = np.meshgrid(np.linspace(x0, x1, 5), np.linspace(y0, y1, 5))
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    libsumo.start(["sumo", "-n", str(network.net_file), "--no-step-log", "--no-warnings"])
    try:
        lonlat = np.array([libsumo.simulation.convertGeo(float(x), float(y)) for x, y in pts])
    finally:
        libsumo.close()
    mx, my = projection.forward(lonlat[:, 0], lonlat[:, 1])
    return NetFrame.fit(pts, np.column_stack([mx, my]))
