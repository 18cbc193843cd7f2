"""The ``world:`` section of a scenario when it says ``kind: sumo``, as frozen dataclasses.

Only the types the scenario parser (``mobility_twin_sim.scenario._build``) understands are used (nested
dataclasses, ``str``, ``int``, ``float``, tuples), so the section can be embedded in ``Scenario`` as it is;
:meth:`SumoWorldConfig.validate` holds the checks that types cannot express. Paths are resolved against the
scenario file by :meth:`SumoWorldConfig.resolve` (the lead's loader passes the file's folder).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mobility_twin_sim.sumo.errors import SumoError

WORLD_KINDS = ("tdrive_replay", "sumo")
DEMAND_KINDS = ("tdrive", "random_trips", "none")
INCIDENT_KINDS = ("close_road", "close_lane", "slowdown")


class SumoConfigError(SumoError):
    """A ``world:`` section that cannot be used as written (the message names the key)."""


@dataclass(frozen=True)
class DemandSection:
    """Where the traffic comes from.

    ``tdrive``: the T-Drive fixes of ``data`` from ``begin`` for ``duration_s`` become taxi trips (SUMO time 0
    is ``begin``); ``scale`` multiplies them with background trips from their zone OD matrix (0: calibrated
    so that simulated taxi speeds match T-Drive's, cached). ``random_trips``: SUMO's randomTrips.py, a
    vehicle every ``period_s``. Pedestrians and cyclists (``*_period_s``, 0: none) where there are sidewalks.
    """

    kind: str = "tdrive"
    data: str = "tdrive/cbd"  # T-Drive folder: absolute, relative to the scenario file, or under sim/data
    begin: str = "2008-02-02 16:00:00"  # Beijing time of SUMO time 0 (the T-Drive window starts here)
    duration_s: float = 3600.0
    scale: float = 0.0  # total trips / taxi trips; 0 = calibrate against T-Drive speeds
    zone_m: float = 450.0  # OD zones (squares)
    max_gap_s: float = 300.0  # T-Drive: longest gap between fixes inside one trip
    min_trip_m: float = 200.0  # T-Drive: a trip ends at the first fix this far (straight line) from its start
    mapmatch_m: float = 120.0  # T-Drive: farthest road a fix is matched to
    period_s: float = 1.0  # random_trips: one vehicle every period_s
    pedestrians_period_s: float = 6.0
    bicycles_period_s: float = 30.0
    calibration_scales: tuple[float, ...] = (1.0, 10.0, 20.0, 25.0, 30.0)


@dataclass(frozen=True)
class IncidentSection:
    """A scheduled incident: ``close_road`` (every lane), ``close_lane`` (``lane`` index, 0 = rightmost) or
    ``slowdown`` (the edge's speed limit set to ``speed_mps``), from ``at_s`` after the scenario start for
    ``duration_s`` (0: to the end). Vehicles whose route uses a closed road are rerouted."""

    kind: str = "close_road"
    edge: str = ""
    lane: int = 0
    at_s: float = 0.0
    duration_s: float = 0.0
    speed_mps: float = 2.0


@dataclass(frozen=True)
class BuildingsSection:
    """Static structures for the LiDARs: ``auto`` (OSM polygons when the network has them, else buildings on
    the city blocks between roads), ``blocks``, ``osm``, or ``none``."""

    kind: str = "auto"
    poly_file: str = ""  # polyconvert output; empty: next to the network (<name>.poly.xml)
    height_m: tuple[float, float] = (12.0, 90.0)  # blocks: building heights drawn uniformly
    lot_m: float = 60.0
    gap_m: float = 12.0
    setback_m: float = 3.0


@dataclass(frozen=True)
class DriversSection:
    """Imperfect drivers (collision-warning scenarios): SUMO's driver imperfection ``sigma`` (0-1) and desired
    headway ``tau`` (s) for every vehicle type but CAVs, bicycles and pedestrians (negative: the types' own
    values), and a share of vehicles that keep driving through a light that turned red up to
    ``red_light_time_s`` after it did (SUMO's junction-model parameter ``jmDriveAfterRedTime``)."""

    sigma: float = -1.0
    tau: float = -1.0
    red_light_share: float = 0.0
    red_light_time_s: float = 2.0


@dataclass(frozen=True)
class SumoWorldConfig:
    kind: str = "sumo"
    network: str = "beijing_cbd"  # beijing_cbd | real_streets | path to a .net.xml
    demand: DemandSection = DemandSection()
    buildings: BuildingsSection = BuildingsSection()
    warmup_s: float = 600.0  # random_trips: simulated before the scenario starts (T-Drive: begin -> start)
    ssm_probability: float = 0.02  # share of vehicles with SUMO's surrogate-safety device (CAVs always)
    ssm_trajectories: bool = False  # each ssm conflict with its measures at every step, not only their extremes
    incidents: tuple[IncidentSection, ...] = ()
    drivers: DriversSection = DriversSection()  # imperfect drivers (defaults: the vehicle types as they are)
    teleport_s: float = 300.0  # SUMO's time-to-teleport for vehicles stuck in a jam (0 or less: never)
    action_step_s: float = 0.5  # drivers decide every action_step_s (SUMO's reaction interval); motion every slot
    output_dir: str = ""  # SUMO's tripinfo and ssm outputs; empty: a run folder under the cache

    def validate(self, where: str = "world") -> None:
        """Raise :class:`SumoConfigError` naming the key of the first value that cannot work."""
        d = self.demand
        if self.kind not in WORLD_KINDS:
            raise SumoConfigError(f"{where}.kind: {self.kind!r} is not one of {', '.join(WORLD_KINDS)}")
        if d.kind not in DEMAND_KINDS:
            raise SumoConfigError(f"{where}.demand.kind: {d.kind!r} is not one of {', '.join(DEMAND_KINDS)}")
        if d.duration_s <= 0 or d.zone_m <= 0 or d.max_gap_s <= 0 or d.min_trip_m < 0 or d.mapmatch_m <= 0:
            raise SumoConfigError(f"{where}.demand: duration_s, zone_m, max_gap_s and mapmatch_m must be positive")
        if d.scale < 0 or (d.scale == 0 and not d.calibration_scales) or any(s < 1 for s in d.calibration_scales):
            raise SumoConfigError(f"{where}.demand.scale: >= 1 (or 0 to calibrate over calibration_scales >= 1)")
        if d.kind == "random_trips" and d.period_s <= 0:
            raise SumoConfigError(f"{where}.demand.period_s must be positive")
        if d.pedestrians_period_s < 0 or d.bicycles_period_s < 0:
            raise SumoConfigError(f"{where}.demand: pedestrians_period_s and bicycles_period_s must be >= 0")
        if self.buildings.kind not in ("auto", "blocks", "osm", "none"):
            raise SumoConfigError(f"{where}.buildings.kind: {self.buildings.kind!r} is not auto, blocks, osm or none")
        lo, hi = self.buildings.height_m
        if not 0 < lo <= hi:
            raise SumoConfigError(f"{where}.buildings.height_m: needs 0 < low <= high, got {self.buildings.height_m}")
        if self.warmup_s < 0 or not 0 <= self.ssm_probability <= 1 or self.action_step_s <= 0:
            raise SumoConfigError(f"{where}: warmup_s >= 0, 0 <= ssm_probability <= 1 and action_step_s > 0")
        dr = self.drivers
        if dr.sigma > 1 or dr.tau == 0 or not 0 <= dr.red_light_share <= 1 or dr.red_light_time_s < 0:
            raise SumoConfigError(f"{where}.drivers: sigma <= 1, tau != 0 (negative: keep), 0 <= red_light_share <= 1, "
                                  "red_light_time_s >= 0")
        for i, inc in enumerate(self.incidents):
            if inc.kind not in INCIDENT_KINDS:
                raise SumoConfigError(f"{where}.incidents[{i}].kind: {inc.kind!r} is not one of {', '.join(INCIDENT_KINDS)}")
            if not inc.edge:
                raise SumoConfigError(f"{where}.incidents[{i}].edge: an edge id is needed")
            if inc.at_s < 0 or inc.duration_s < 0 or inc.lane < 0 or inc.speed_mps <= 0:
                raise SumoConfigError(f"{where}.incidents[{i}]: at_s, duration_s, lane >= 0 and speed_mps > 0")

    def resolve(self, base: Path | None) -> SumoWorldConfig:
        """Paths relative to ``base`` (the scenario file's folder) made absolute when the file exists there."""
        if base is None:
            return self

        def near(value: str) -> str:
            if not value or Path(value).is_absolute() or value in ("beijing_cbd", "real_streets"):
                return value
            candidate = Path(base) / value
            return str(candidate.resolve()) if candidate.exists() else value

        return replace(self, network=near(self.network), demand=replace(self.demand, data=near(self.demand.data)),
                       buildings=replace(self.buildings, poly_file=near(self.buildings.poly_file)),
                       output_dir=near(self.output_dir) if self.output_dir else "")


@dataclass(frozen=True)
class WorldSection(SumoWorldConfig):
    """A scenario's ``world:`` section: ``kind: tdrive_replay`` (the default: the SUMO keys are ignored) or
    ``kind: sumo`` (this section configures the SUMO world). Embed it in ``Scenario`` as
    ``world: WorldSection = WorldSection()``."""

    kind: str = "tdrive_replay"
