"""Scenario files: the YAML that says what city the simulator builds, and its validated, typed form.

A scenario names the T-Drive data, the area (an origin and a polygon in the local `map` frame, metres),
the time window and slot, roadside units (positions or a generated layout) with their LiDAR, which
taxis are connected automated vehicles (CAVs) with LiDAR and odometry noise, the edge servers with
their CPU (DITEN Table II ranges) and the edge sites (local twins) they belong to, the cloud, and the
random seed: same file and seed, same run. Shapely is used for areas and coverage.

The ``world:`` section says which world runs the traffic: ``kind: tdrive_replay`` (the default: the T-Drive
fixes interpolated, as every scenario without the section has it) or ``kind: sumo`` (microscopic traffic on
a road network, :mod:`mobility_twin_sim.sumo`; see ``scenarios/city.yaml``). Its paths are taken relative to
the scenario file.

Every key is checked; an unknown or ill-typed key is a :class:`ScenarioError` naming the file and the
key path (``rsus.lidar.channels``). See ``sim/scenarios/default.yaml`` for a documented example.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from shapely.geometry import Polygon, box

from mobility_twin_sim.sumo.config import SumoConfigError, WorldSection

FORMAT_VERSION = 1
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DATA = Path(__file__).resolve().parent / "data"


class ScenarioError(Exception):
    """A scenario file that cannot be used as written."""


# ------------------------------------------------------------------------------------------ sections
@dataclass(frozen=True)
class DataSection:
    path: str = "tdrive/cbd"  # relative to the scenario file, then to sim/data; or absolute
    max_speed_mps: float = 50.0  # implied speed above which a fix is a GPS jump


@dataclass(frozen=True)
class AreaSection:
    origin: tuple[float, float] = (116.4468, 39.9135)  # lon, lat of the map origin
    polygon: tuple[tuple[float, float], ...] = ()  # map metres; empty: the box below
    box_m: tuple[float, float, float, float] = (-600.0, -600.0, 600.0, 600.0)  # x_min, y_min, x_max, y_max
    load_margin_m: float = 300.0  # fixes this far outside the area are loaded too (vehicles drive in and out)

    def shape(self) -> Polygon:
        return Polygon(self.polygon) if self.polygon else box(*self.box_m)


@dataclass(frozen=True)
class TimeSection:
    start: str = "2008-02-02 16:10:00"  # Beijing time
    duration_s: float = 300.0
    slot_s: float = 0.1  # ground-truth and clock period
    max_gap_s: float = 300.0  # never interpolate across a longer gap between fixes
    fold: int = 1  # overlay this many consecutive windows of duration_s (denser traffic, real motion)

    def start_datetime(self) -> datetime:
        return datetime.strptime(self.start, "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class VehicleClass:
    share: float = 1.0
    length_m: tuple[float, float] = (4.6, 0.25)  # mean, standard deviation
    width_m: tuple[float, float] = (1.8, 0.08)
    height_m: tuple[float, float] = (1.5, 0.08)


def _default_classes() -> dict[str, VehicleClass]:
    return {
        "car": VehicleClass(0.80, (4.6, 0.25), (1.80, 0.08), (1.50, 0.08)),
        "suv": VehicleClass(0.15, (4.8, 0.20), (1.90, 0.08), (1.75, 0.08)),
        "van": VehicleClass(0.05, (5.2, 0.30), (2.00, 0.08), (2.10, 0.10)),
    }


@dataclass(frozen=True)
class VehiclesSection:
    classes: dict[str, VehicleClass] = field(default_factory=_default_classes)


@dataclass(frozen=True)
class LidarSection:
    channels: int = 32
    azimuth_steps: int = 1024
    vertical_fov_deg: tuple[float, float] = (-25.0, 3.0)  # lowest and highest beam elevation
    max_range_m: float = 80.0
    min_range_m: float = 1.0
    rate_hz: float = 10.0
    range_noise_m: float = 0.02  # standard deviation of the range
    dropout: float = 0.01  # probability that a return is lost


@dataclass(frozen=True)
class RsuLayout:
    kind: str = "hotspots"  # hotspots (densest traffic) | grid | positions
    count: int = 8  # hotspots
    min_separation_m: float = 150.0  # hotspots
    spacing_m: float = 250.0  # grid


@dataclass(frozen=True)
class RsusSection:
    positions: tuple[tuple[float, float], ...] = ()  # map metres; used when layout.kind is "positions"
    layout: RsuLayout = RsuLayout()
    mount_height_m: float = 6.0
    lidar: LidarSection = LidarSection()


@dataclass(frozen=True)
class OdometryNoise:
    """Standard deviations of the Gaussian noise on a CAV's odometry (also the covariance it reports)."""

    position_m: float = 0.05
    heading_rad: float = 0.005
    speed_mps: float = 0.05


@dataclass(frozen=True)
class CavsSection:
    taxis: tuple[int, ...] = ()  # explicit taxi ids; else the `count` taxis longest in the area
    count: int = 4
    mount_height_m: float = 0.4  # above the roof
    lidar: LidarSection = LidarSection(vertical_fov_deg=(-20.0, 5.0), max_range_m=60.0)
    odometry_rate_hz: float = 20.0
    odometry_noise: OdometryNoise = OdometryNoise()


@dataclass(frozen=True)
class V2xSection:
    """Connected vehicles broadcasting their own state (cooperative awareness), relayed to their edge site
    by the base station serving them (nearest edge server in coverage)."""

    penetration: float = 0.0  # share of vehicles that are connected, [0, 1]
    rate_hz: float = 10.0
    position_noise_m: float = 1.0  # GNSS
    speed_noise_mps: float = 0.3


@dataclass(frozen=True)
class EdgeServersSection:
    positions: tuple[tuple[float, float], ...] = ()  # map metres; empty: a grid over the area
    grid_spacing_m: float = 600.0
    coverage_radius_m: float = 450.0
    cpu_hz: tuple[float, float] = (15e9, 25e9)  # DITEN Table II: 15-25 GHz
    demand_hz_per_vehicle: float = 2.0e8  # CPU a served vehicle's tasks take on average (load = sum / cpu)


@dataclass(frozen=True)
class SitesSection:
    """Edge sites (one local twin each): a split of the area into `count` vertical strips, or polygons."""

    count: int = 2
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()


@dataclass(frozen=True)
class CloudSection:
    position: tuple[float, float] = (0.0, 0.0)
    cpu_hz: float = 3.5e9  # the placement paper's cloud (Table 2)


@dataclass(frozen=True)
class Scenario:
    format_version: int = FORMAT_VERSION
    name: str = "unnamed"
    description: str = ""
    seed: int = 0
    data: DataSection = DataSection()
    area: AreaSection = AreaSection()
    time: TimeSection = TimeSection()
    vehicles: VehiclesSection = VehiclesSection()
    rsus: RsusSection = RsusSection()
    cavs: CavsSection = CavsSection()
    v2x: V2xSection = V2xSection()
    edge_servers: EdgeServersSection = EdgeServersSection()
    sites: SitesSection = SitesSection()
    cloud: CloudSection = CloudSection()
    world: WorldSection = WorldSection()  # tdrive_replay (default) | sumo
    source: str = ""  # the file it was read from (set by load_scenario)

    def data_path(self) -> Path:
        """The T-Drive path: absolute, else next to the scenario file, else under sim/data."""
        p = Path(self.data.path).expanduser()
        if p.is_absolute():
            return p
        if self.source:
            near = Path(self.source).parent / p
            if near.exists():
                return near
        return DATA / p

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        if self.world == WorldSection():  # the T-Drive replay: written as before the section existed
            out.pop("world")
        return out


# ------------------------------------------------------------------------------------------ parsing
def _build(cls, raw: Any, where: str, origin: str):
    """Build dataclass ``cls`` from YAML ``raw``, checking every key and type."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ScenarioError(f"{origin}: {where or 'top level'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ScenarioError(f"{origin}: {where + '.' if where else ''}{unknown[0]}: unknown key "
                            f"(known: {', '.join(sorted(names))})")
    values = {k: _convert(hints[k], v, f"{where + '.' if where else ''}{k}", origin) for k, v in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ScenarioError(f"{origin}: {where or 'top level'}: {err}") from None


def _convert(tp, value, where: str, origin: str):
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, origin)
    org, args = typing.get_origin(tp), typing.get_args(tp)
    if org is dict:
        if not isinstance(value, dict):
            raise ScenarioError(f"{origin}: {where}: expected a mapping")
        return {str(k): _convert(args[1], v, f"{where}.{k}", origin) for k, v in value.items()}
    if org is tuple:
        if not isinstance(value, list | tuple):
            raise ScenarioError(f"{origin}: {where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]", origin) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ScenarioError(f"{origin}: {where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]", origin) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is float:
        # YAML 1.1 reads 15.0e9 (no sign after e) as a string: accept numeric strings
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise ScenarioError(f"{origin}: {where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ScenarioError(f"{origin}: {where}: expected a finite number, got {value!r}")
        return number
    if tp is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{origin}: {where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{origin}: {where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ScenarioError(f"{origin}: {where}: expected a string, got {value!r}")
        return str(value)
    raise ScenarioError(f"{origin}: {where}: unsupported type {tp}")  # pragma: no cover


#: Bounds of single values: key path -> (lowest allowed, whether the lowest itself is allowed).
_LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "data.max_speed_mps": (0.0, False),
    "area.load_margin_m": (0.0, True),
    "rsus.layout.count": (0, True),
    "rsus.layout.min_separation_m": (0.0, True),
    "rsus.layout.spacing_m": (0.0, False),
    "rsus.mount_height_m": (0.0, True),
    "rsus.lidar.range_noise_m": (0.0, True),
    "cavs.count": (0, True),
    "cavs.mount_height_m": (0.0, True),
    "cavs.lidar.range_noise_m": (0.0, True),
    "cavs.odometry_rate_hz": (0.0, False),
    "cavs.odometry_noise.position_m": (0.0, True),
    "cavs.odometry_noise.heading_rad": (0.0, True),
    "cavs.odometry_noise.speed_mps": (0.0, True),
    "v2x.position_noise_m": (0.0, True),
    "v2x.speed_noise_mps": (0.0, True),
    "edge_servers.grid_spacing_m": (0.0, False),
    "edge_servers.coverage_radius_m": (0.0, False),
    "edge_servers.demand_hz_per_vehicle": (0.0, True),
    "cloud.cpu_hz": (0.0, False),
}


def _value_at(s: Scenario, path: str):
    value = s
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _validate(s: Scenario, origin: str) -> None:
    def bad(where: str, msg: str) -> ScenarioError:
        return ScenarioError(f"{origin}: {where}: {msg}")

    for where, (low, inclusive) in _LOWER_BOUNDS.items():
        value = _value_at(s, where)
        if value < low or (value == low and not inclusive):
            raise bad(where, f"must be {'>=' if inclusive else '>'} {low}, got {value!r}")
    for name, c in s.vehicles.classes.items():
        for dim in ("length_m", "width_m", "height_m"):
            mean, std = getattr(c, dim)
            if not (mean > 0 and std >= 0):
                raise bad(f"vehicles.classes.{name}.{dim}", f"needs a mean > 0 and a standard deviation >= 0, got "
                                                            f"{getattr(c, dim)}")

    if s.format_version != FORMAT_VERSION:
        raise bad("format_version", f"this simulator reads version {FORMAT_VERSION}, the file is {s.format_version}")
    if not s.area.shape().is_valid or s.area.shape().area <= 0:
        raise bad("area", "the area polygon is empty or self-intersecting")
    if s.time.duration_s <= 0 or s.time.slot_s <= 0 or s.time.max_gap_s <= 0:
        raise bad("time", "duration_s, slot_s and max_gap_s must be positive")
    if s.time.fold < 1:
        raise bad("time.fold", f"must be at least 1, got {s.time.fold}")
    try:
        s.time.start_datetime()
    except ValueError:
        raise bad("time.start", f"{s.time.start!r} is not 'YYYY-MM-DD HH:MM:SS'") from None
    if s.rsus.layout.kind not in ("hotspots", "grid", "positions"):
        raise bad("rsus.layout.kind", f"{s.rsus.layout.kind!r} is not hotspots, grid or positions")
    if s.rsus.layout.kind == "positions" and not s.rsus.positions:
        raise bad("rsus.positions", "layout.kind is positions but no positions are given")
    for where, lidar in (("rsus.lidar", s.rsus.lidar), ("cavs.lidar", s.cavs.lidar)):
        lo, hi = lidar.vertical_fov_deg
        if not (lidar.channels >= 1 and lidar.azimuth_steps >= 1 and -90 <= lo <= hi <= 90):
            raise bad(where, "needs channels >= 1, azimuth_steps >= 1 and -90 <= vertical_fov_deg[0] <= [1] <= 90")
        if not (0 < lidar.min_range_m < lidar.max_range_m and lidar.rate_hz > 0 and 0 <= lidar.dropout < 1):
            raise bad(where, "needs 0 < min_range_m < max_range_m, rate_hz > 0 and 0 <= dropout < 1")
    if not s.vehicles.classes or any(c.share < 0 for c in s.vehicles.classes.values()):
        raise bad("vehicles.classes", "needs at least one class and no negative share")
    if not (0.0 <= s.v2x.penetration <= 1.0 and s.v2x.rate_hz > 0):
        raise bad("v2x", "needs 0 <= penetration <= 1 and rate_hz > 0")
    lo, hi = s.edge_servers.cpu_hz
    if not 0 < lo <= hi:
        raise bad("edge_servers.cpu_hz", f"needs 0 < low <= high, got {s.edge_servers.cpu_hz}")
    if s.sites.count < 1 and not s.sites.polygons:
        raise bad("sites", "needs count >= 1 or polygons")
    try:
        s.world.validate("world")
    except SumoConfigError as err:  # names the key: world.demand.kind: ...
        raise ScenarioError(f"{origin}: {err}") from None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file; a bare name is looked up in sim/scenarios/ (``default``)."""
    p = Path(path)
    if not p.exists() and not p.suffix:
        p = SCENARIOS / f"{p.name}.yaml"
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in SCENARIOS.glob("*.yaml")))
        raise ScenarioError(f"scenario file {path} does not exist (shipped scenarios: {known})")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ScenarioError(f"{p}: not valid YAML: {err}") from None
    scenario = _build(Scenario, raw, "", str(p))
    _validate(scenario, str(p))
    # the world's network, data and polygon paths are taken next to the scenario file
    return dataclasses.replace(scenario, source=str(p.resolve()), world=scenario.world.resolve(p.resolve().parent))


def scenario_from_dict(raw: dict, origin: str = "<dict>") -> Scenario:
    """Build and validate a scenario from a mapping (tests, programmatic use)."""
    scenario = _build(Scenario, raw, "", origin)
    _validate(scenario, origin)
    return scenario
