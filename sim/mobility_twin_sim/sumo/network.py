"""Road networks of the SUMO world: a synthetic Beijing CBD, a real OpenStreetMap city, or a user's own.

* ``beijing_cbd`` (:func:`build_beijing_cbd`): no road network of Beijing can be obtained here, so this is a
  **synthetic** grid over the CBD scenario area and 750 m around it, generated with ``netgenerate`` and
  built with ``netconvert``: 225 m blocks, a 4+4-lane east-west avenue through the origin (like
  Jianguomenwai / Chang'an Avenue), 3+3-lane arterials every 450 m, 2+2-lane streets between them,
  signalised junctions wherever an arterial crosses, sidewalks and zebra crossings everywhere. Its
  ``<location>`` carries a transverse-Mercator projection at the scenario origin, so SUMO's x, y are the
  project's ``map`` frame plus a constant offset (:attr:`Network.frame` removes it).
* ``real_streets`` (:func:`real_streets`): a real OpenStreetMap network shipped inside the SUMO wheel
  (Berlin-Adlershof, ``tools/game/DRT/osm.net.xml``, with sidewalks and guessed signals).
* Your own city (:func:`build_world_from_osm`): ``netconvert`` with SUMO's OSM type maps on an ``.osm``
  file (buildings from ``polyconvert``), or an existing ``.net.xml``, and a scenario skeleton next to it.

Generated files are cached (:func:`mobility_twin_sim.sumo.tools.cache_dir`) under a hash of their inputs
and the SUMO version; a second call returns the cached network. :func:`check_loads` runs ``sumo`` on a
network in a subprocess first: a network that does not load is a :class:`NetworkError`, never a crash of
the process that would host libsumo.
"""

from __future__ import annotations

import gzip
import math
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.sumo import tools
from mobility_twin_sim.sumo.errors import NetworkError, SumoToolError

SYNTHETIC_LABEL = "SYNTHETIC road network (generated grid resembling the Beijing CBD; not the real streets)"
NETWORKS = ("beijing_cbd", "real_streets")
GENERATOR_VERSION = 2  # part of the cache key of generated networks: bump when the generation changes

# The synthetic CBD: the default scenario's origin; 2.7 km square, inside the 3 km square of the bundled
# T-Drive CBD data, so that taxis drive in from well outside the 1.2 km scenario area.
CBD_ORIGIN = (116.4468, 39.9135)
CBD_BOX_M = (-1350.0, -1350.0, 1350.0, 1350.0)


# ------------------------------------------------------------------------------------------------ frames
@dataclass(frozen=True)
class Location:
    """The ``<location>`` element of a SUMO network: SUMO xy = projected xy + ``net_offset``."""

    net_offset: tuple[float, float]
    conv_boundary: tuple[float, float, float, float]  # SUMO xy of the network's extent
    orig_boundary: tuple[float, float, float, float]  # lon/lat (geo networks) of the same extent
    proj: str  # proj.4 string; "!" when the network is not georeferenced

    @property
    def georeferenced(self) -> bool:
        return self.proj not in ("", "!")

    def centre_lonlat(self) -> tuple[float, float] | None:
        if not self.georeferenced:
            return None
        lo_lon, lo_lat, hi_lon, hi_lat = self.orig_boundary
        return (lo_lon + hi_lon) / 2.0, (lo_lat + hi_lat) / 2.0


def read_location(net_file: Path) -> Location:
    """Parse the ``<location>`` of a network (read from its first 256 kB; ``.gz`` accepted)."""
    net_file = Path(net_file)
    if not net_file.is_file():
        raise NetworkError(f"network file {net_file} does not exist")
    opener = gzip.open if net_file.suffix == ".gz" else open
    try:
        with opener(net_file, "rt", encoding="utf-8", errors="replace") as f:
            head = f.read(262_144)
    except OSError as err:
        raise NetworkError(f"cannot read network file {net_file}: {err}") from None
    m = re.search(r"<location\s([^>]*)/>", head)
    if not m:
        raise NetworkError(f"{net_file} has no <location> element: not a SUMO network")
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    try:
        off = tuple(float(v) for v in attrs["netOffset"].split(","))
        conv = tuple(float(v) for v in attrs["convBoundary"].split(","))
        orig = tuple(float(v) for v in attrs.get("origBoundary", "0,0,0,0").split(","))
    except (KeyError, ValueError) as err:
        raise NetworkError(f"{net_file}: malformed <location> ({err})") from None
    return Location(off, conv, orig, attrs.get("projParameter", "!"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class NetFrame:
    """SUMO network coordinates -> the project's ``map`` frame: ``map = R @ (sumo) + t``.

    ``rotation`` (rad, counter-clockwise) and ``scale`` describe R (a similarity); for the generated CBD
    network R is the identity and ``t`` is minus the ``netOffset``. ``residual_m`` is the largest error
    of the fit over the points it was fitted on (0 for an exact frame).
    """

    tx: float
    ty: float
    rotation: float = 0.0
    scale: float = 1.0
    residual_m: float = 0.0

    @classmethod
    def translation(cls, dx: float, dy: float) -> NetFrame:
        return cls(dx, dy)

    @classmethod
    def fit(cls, sumo_xy: np.ndarray, map_xy: np.ndarray) -> NetFrame:
        """Least-squares similarity taking ``sumo_xy`` (N, 2) onto ``map_xy`` (N, 2)."""
        s, m = np.asarray(sumo_xy, float), np.asarray(map_xy, float)
        cs, cm = s.mean(axis=0), m.mean(axis=0)
        a, b = s - cs, m - cm
        # complex-number form: b = z a with z = scale * exp(i rotation)
        za = a[:, 0] + 1j * a[:, 1]
        zb = b[:, 0] + 1j * b[:, 1]
        z = np.vdot(za, zb) / max(np.vdot(za, za).real, 1e-12)
        scale, rotation = float(abs(z)), float(np.angle(z))
        t = cm - _rotate(cs, rotation, scale)
        frame = cls(float(t[0]), float(t[1]), rotation, scale)
        residual = float(np.max(np.hypot(*(frame.to_map(s[:, 0], s[:, 1]) - m.T)))) if len(s) else 0.0
        return cls(frame.tx, frame.ty, rotation, scale, residual)

    def to_map(self, x, y) -> np.ndarray:
        """(2, N) map coordinates of SUMO points."""
        xy = np.stack([np.asarray(x, float), np.asarray(y, float)], axis=-1)
        out = _rotate(xy, self.rotation, self.scale) + np.array([self.tx, self.ty])
        return np.moveaxis(out, -1, 0)

    def to_sumo(self, x, y) -> np.ndarray:
        """(2, N) SUMO coordinates of map points."""
        xy = np.stack([np.asarray(x, float) - self.tx, np.asarray(y, float) - self.ty], axis=-1)
        return np.moveaxis(_rotate(xy, -self.rotation, 1.0 / self.scale), -1, 0)

    def heading_to_map(self, sumo_angle_deg) -> np.ndarray:
        """SUMO's vehicle angle (degrees, clockwise from north) -> map heading (rad, ENU, 0 = east, CCW)."""
        return _wrap(np.radians(90.0 - np.asarray(sumo_angle_deg, float)) + self.rotation)


def _rotate(xy: np.ndarray, angle: float, scale: float) -> np.ndarray:
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return np.stack([c * xy[..., 0] - s * xy[..., 1], s * xy[..., 0] + c * xy[..., 1]], axis=-1)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


# ------------------------------------------------------------------------------------------------ networks
@dataclass(frozen=True)
class Network:
    """A road network ready for the SUMO world.

    ``origin`` is the (lon, lat) of the ``map`` frame the world reports in; ``frame`` takes SUMO's
    coordinates there when it is known without a running simulation (generated networks), else None
    (the world fits it through SUMO's own projection when it starts). ``label`` is shown wherever the
    network is (the world's description, the bench, snapshots): it says when a network is synthetic.
    """

    name: str
    net_file: Path
    origin: tuple[float, float]
    label: str
    synthetic: bool
    frame: NetFrame | None = None
    poly_file: Path | None = None  # building polygons (polyconvert output), when the source had them
    sidewalks: bool = False
    location: Location | None = None
    info: dict = field(default_factory=dict)
    generated_key: str = ""  # generated networks: the hash of their generation inputs (the file has a date)

    def projection(self) -> LocalENU:
        return LocalENU(*self.origin)

    @property
    def key(self) -> str:
        """What identifies this network in cache keys of files derived from it: the generation inputs of a
        generated network, else the content of its file."""
        return self.generated_key or tools.file_digest(self.net_file)


def check_loads(net_file: Path) -> None:
    """Load ``net_file`` in a ``sumo`` subprocess; :class:`NetworkError` if it does not load.

    libsumo runs in-process, and a network it cannot parse can take the process down with it (seen: a
    segmentation fault on a malformed file), so every network is checked here first. Successful checks
    are remembered per file (path, size, modification time) in the cache.
    """
    net_file = Path(net_file)
    if not net_file.is_file():
        raise NetworkError(f"network file {net_file} does not exist")
    stat = net_file.stat()
    stamp = tools.cache_dir() / "checked" / f"{tools.fingerprint(str(net_file.resolve()), stat.st_size, stat.st_mtime_ns, tools.version())}.ok"
    if stamp.exists():
        return
    try:
        tools.run("sumo", ["-n", str(net_file), "--begin", "0", "--end", "0", "--no-step-log", "--no-warnings",
                           "--duration-log.disable"], what=f"loading {net_file}", timeout_s=300.0)
    except SumoToolError as err:
        raise NetworkError(f"network {net_file} does not load in SUMO: {err}") from None
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text("ok\n")


def has_sidewalks(net_file: Path) -> bool:
    """Whether some lane of the network is reserved for pedestrians (a sidewalk)."""
    opener = gzip.open if Path(net_file).suffix == ".gz" else open
    sidewalk = re.compile(r'<lane [^>]*\sallow="pedestrian"')
    with opener(net_file, "rt", encoding="utf-8", errors="replace") as f:
        return any(sidewalk.search(line) for line in f)


# ------------------------------------------------------------------------------------------------ beijing_cbd
@dataclass(frozen=True)
class CbdGridSpec:
    """The synthetic CBD grid. Defaults: the default scenario's origin, its area plus the load margin.

    Lines of the grid (every ``spacing_m``) are classed by their map coordinate: ``avenue_y`` (4 lanes
    each way, 60 km/h), ``arterial_every_m`` multiples (3 lanes, 60 km/h), the rest streets (2 lanes,
    50 km/h). Junctions on an avenue or arterial are signalised (static 90 s programmes); the others
    give way to the wider road.
    """

    origin: tuple[float, float] = CBD_ORIGIN
    box_m: tuple[float, float, float, float] = CBD_BOX_M
    spacing_m: float = 225.0
    avenue_y: float = 0.0
    arterial_every_m: float = 450.0
    lanes: tuple[int, int, int] = (4, 3, 2)  # avenue, arterial, street (per direction)
    speeds_mps: tuple[float, float, float] = (16.67, 16.67, 13.89)
    cycle_s: int = 90

    def lines(self) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = self.box_m
        xs = x0 + self.spacing_m * np.arange(round((x1 - x0) / self.spacing_m) + 1)
        ys = y0 + self.spacing_m * np.arange(round((y1 - y0) / self.spacing_m) + 1)
        return xs, ys

    def road_class(self, along_y: bool, coordinate: float) -> int:
        """0 avenue, 1 arterial, 2 street, for the grid line x = c (``along_y``) or y = c."""
        if not along_y and abs(coordinate - self.avenue_y) < 1e-6:
            return 0
        ratio = coordinate / self.arterial_every_m
        return 1 if abs(ratio - round(ratio)) < 1e-6 else 2


def tmerc(origin: tuple[float, float]) -> str:
    """The proj.4 transverse Mercator at ``origin`` (lon, lat): metres east and north of it."""
    lon, lat = origin
    return (f"+proj=tmerc +lat_0={lat:.7f} +lon_0={lon:.7f} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +datum=WGS84 "
            "+units=m +no_defs")


def build_beijing_cbd(spec: CbdGridSpec = CbdGridSpec(), *, cache: Path | None = None) -> Network:
    """Generate (or take from the cache) the synthetic CBD network. See :class:`CbdGridSpec`."""
    key = tools.fingerprint(spec, tools.version(), GENERATOR_VERSION)
    folder = (cache or tools.cache_dir()) / "networks" / f"beijing_cbd-{key}"
    net_file = folder / "beijing_cbd.net.xml"
    x0, y0, _, _ = spec.box_m
    offset = (-x0, -y0)  # SUMO xy = map xy + offset: the grid starts at SUMO (0, 0)
    if not net_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _generate_cbd(spec, folder, net_file, offset)
    check_loads(net_file)
    xs, ys = spec.lines()
    return Network(
        name="beijing_cbd", net_file=net_file, origin=spec.origin, label=SYNTHETIC_LABEL, synthetic=True,
        frame=NetFrame.translation(-offset[0], -offset[1]), sidewalks=True, location=read_location(net_file),
        info={"blocks_m": spec.spacing_m, "junctions": len(xs) * len(ys), "lanes_per_direction": list(spec.lanes),
              "signal_cycle_s": spec.cycle_s},
        generated_key=f"beijing_cbd-{key}",
    )


def _generate_cbd(spec: CbdGridSpec, folder: Path, net_file: Path, offset: tuple[float, float]) -> None:
    xs, ys = spec.lines()
    tmp = folder / "tmp"
    tmp.mkdir(exist_ok=True)
    # 1. topology: netgenerate's grid, written as plain XML (nodes, edges) to be classed
    tools.run("netgenerate", [
        "--grid", "--grid.x-number", str(len(xs)), "--grid.y-number", str(len(ys)),
        "--grid.x-length", f"{spec.spacing_m:g}", "--grid.y-length", f"{spec.spacing_m:g}",
        "--default.lanenumber", str(spec.lanes[2]), "--default.speed", f"{spec.speeds_mps[2]:g}",
        "--plain-output-prefix", str(tmp / "grid"), "--output-file", str(tmp / "grid.net.xml"),
    ], what="generating the CBD grid")
    nodes = ET.parse(tmp / "grid.nod.xml").getroot()
    edges = ET.parse(tmp / "grid.edg.xml").getroot()
    pos = {n.get("id"): (float(n.get("x")), float(n.get("y"))) for n in nodes.iter("node")}
    lanes_at: dict[str, int] = {}
    for e in edges.iter("edge"):
        (ax, ay), (bx, _) = pos[e.get("from")], pos[e.get("to")]
        along_y = abs(ax - bx) < 1e-6  # a north-south edge lies on the line x = const
        coordinate = (ax if along_y else ay) - (offset[0] if along_y else offset[1])
        cls = spec.road_class(along_y, coordinate)
        e.set("numLanes", str(spec.lanes[cls]))
        e.set("speed", f"{spec.speeds_mps[cls]:.2f}")
        e.set("priority", str(3 - cls))
        e.set("type", ("avenue", "arterial", "street")[cls])
        for end in (e.get("from"), e.get("to")):
            lanes_at[end] = max(lanes_at.get(end, 0), spec.lanes[cls])
    degree: dict[str, int] = {}
    for e in edges.iter("edge"):
        for end in (e.get("from"), e.get("to")):
            degree[end] = degree.get(end, 0) + 1
    for n in nodes.iter("node"):
        major = lanes_at.get(n.get("id"), 0) > spec.lanes[2]
        inner = degree.get(n.get("id"), 0) >= 6  # three or four roads meet (fringe corners have fewer)
        n.set("type", "traffic_light" if major and inner else "priority")
    for root in (nodes, edges):
        for loc in root.findall("location"):
            root.remove(loc)
    ET.ElementTree(nodes).write(tmp / "cbd.nod.xml", encoding="UTF-8", xml_declaration=True)
    ET.ElementTree(edges).write(tmp / "cbd.edg.xml", encoding="UTF-8", xml_declaration=True)
    # 2. the network: connections, signal programmes, sidewalks and crossings
    raw = tmp / "cbd.net.xml"
    tools.run("netconvert", [
        "--node-files", str(tmp / "cbd.nod.xml"), "--edge-files", str(tmp / "cbd.edg.xml"),
        "--offset.disable-normalization", "--no-turnarounds.except-deadend",
        "--sidewalks.guess", "--sidewalks.guess.max-speed", "30", "--crossings.guess", "--walkingareas",
        "--tls.default-type", "static", "--tls.cycle.time", str(spec.cycle_s), "--tls.left-green.time", "8",
        "--junctions.corner-detail", "5", "--output.street-names",
        "--output-file", str(raw), "--no-warnings",
    ], what="building the CBD network")
    # 3. georeference: a transverse Mercator at the origin, SUMO xy = its xy + offset
    x_lo, x_hi = xs[0] + offset[0], xs[-1] + offset[0]
    y_lo, y_hi = ys[0] + offset[1], ys[-1] + offset[1]
    enu = LocalENU(*spec.origin)
    lon, lat = enu.inverse(np.array([xs[0], xs[-1]]), np.array([ys[0], ys[-1]]))
    text = raw.read_text(encoding="utf-8")
    location = (f'<location netOffset="{offset[0]:.2f},{offset[1]:.2f}" '
                f'convBoundary="{x_lo:.2f},{y_lo:.2f},{x_hi:.2f},{y_hi:.2f}" '
                f'origBoundary="{lon[0]:.7f},{lat[0]:.7f},{lon[1]:.7f},{lat[1]:.7f}" '
                f'projParameter="{tmerc(spec.origin)}"/>')
    text, n = re.subn(r"<location\s[^>]*/>", location, text, count=1)
    if n != 1:
        raise NetworkError(f"netconvert wrote no <location> into {raw}")
    text = text.replace("<net ", f"<!-- {SYNTHETIC_LABEL} -->\n<net ", 1)
    net_file.write_text(text, encoding="utf-8")
    shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ real_streets
REAL_STREETS = "tools/game/DRT/osm.net.xml"
REAL_STREETS_LABEL = ("real OpenStreetMap streets: Berlin-Adlershof (the network of SUMO's DRT game, shipped in "
                      "the eclipse-sumo wheel; (c) OpenStreetMap contributors, ODbL)")


def real_streets() -> Network:
    """The real OSM network shipped in the SUMO wheel; the map origin is its centre."""
    net_file = tools.sumo_home() / REAL_STREETS
    check_loads(net_file)
    loc = read_location(net_file)
    return Network(name="real_streets", net_file=net_file, origin=_net_centre(net_file, loc), label=REAL_STREETS_LABEL,
                   synthetic=False, sidewalks=has_sidewalks(net_file), location=loc)


def _net_centre(net_file: Path, loc: Location) -> tuple[float, float]:
    """(lon, lat) of the centre of the network's extent (its convBoundary), from its projection."""
    if not loc.georeferenced:
        raise NetworkError(f"{net_file} is not georeferenced (projParameter '!'): give the map origin explicitly")
    # SUMO's origBoundary is the bounding box of the *input*, often larger than the network: convert the
    # centre of convBoundary instead (a UTM inverse would need a projection library; the network's extent in
    # lon/lat is interpolated linearly between the corners that origBoundary and convBoundary share).
    x0, y0, x1, y1 = loc.conv_boundary
    cx, cy = (x0 + x1) / 2 - loc.net_offset[0], (y0 + y1) / 2 - loc.net_offset[1]
    lonlat = utm_inverse(cx, cy, loc.proj)
    if lonlat is None:
        centre = loc.centre_lonlat()
        assert centre is not None
        return centre
    return lonlat


def utm_inverse(easting: float, northing: float, proj: str) -> tuple[float, float] | None:
    """lon/lat of a UTM (``+proj=utm +zone=N``) or transverse Mercator (``+proj=tmerc``) point on WGS84.

    Enough to place a map origin (mm-level over a city); None for any other projection.
    """
    params = dict(re.findall(r"\+(\w+)=([^\s]+)", proj))
    if "+proj=utm" in proj and "zone" in params:
        lon0, k0, fe, fn = -183.0 + 6.0 * int(params["zone"]), 0.9996, 500_000.0, 0.0
        if "+south" in proj:
            fn = 10_000_000.0
        lat0 = 0.0
    elif "+proj=tmerc" in proj:
        lon0, lat0 = float(params.get("lon_0", 0)), float(params.get("lat_0", 0))
        k0, fe, fn = float(params.get("k", params.get("k_0", 1))), float(params.get("x_0", 0)), float(params.get("y_0", 0))
    else:
        return None
    a, f = 6_378_137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    ep2 = e2 / (1 - e2)

    def meridian(phi: float) -> float:
        return a * ((1 - e2 / 4 - 3 * e2**2 / 64 - 5 * e2**3 / 256) * phi
                    - (3 * e2 / 8 + 3 * e2**2 / 32 + 45 * e2**3 / 1024) * math.sin(2 * phi)
                    + (15 * e2**2 / 256 + 45 * e2**3 / 1024) * math.sin(4 * phi)
                    - (35 * e2**3 / 3072) * math.sin(6 * phi))

    m = meridian(math.radians(lat0)) + (northing - fn) / k0
    mu = m / (a * (1 - e2 / 4 - 3 * e2**2 / 64 - 5 * e2**3 / 256))
    e1 = (1 - math.sqrt(1 - e2)) / (1 + math.sqrt(1 - e2))
    phi1 = (mu + (3 * e1 / 2 - 27 * e1**3 / 32) * math.sin(2 * mu) + (21 * e1**2 / 16 - 55 * e1**4 / 32) * math.sin(4 * mu)
            + (151 * e1**3 / 96) * math.sin(6 * mu) + (1097 * e1**4 / 512) * math.sin(8 * mu))
    n1 = a / math.sqrt(1 - e2 * math.sin(phi1) ** 2)
    t1 = math.tan(phi1) ** 2
    c1 = ep2 * math.cos(phi1) ** 2
    r1 = a * (1 - e2) / (1 - e2 * math.sin(phi1) ** 2) ** 1.5
    d = (easting - fe) / (n1 * k0)
    lat = phi1 - (n1 * math.tan(phi1) / r1) * (d**2 / 2 - (5 + 3 * t1 + 10 * c1 - 4 * c1**2 - 9 * ep2) * d**4 / 24
                                               + (61 + 90 * t1 + 298 * c1 + 45 * t1**2 - 252 * ep2 - 3 * c1**2) * d**6 / 720)
    lon = (d - (1 + 2 * t1 + c1) * d**3 / 6 + (5 - 2 * c1 + 28 * t1 - 3 * c1**2 + 8 * ep2 + 24 * t1**2) * d**5 / 120) / math.cos(phi1)
    return lon0 + math.degrees(lon), math.degrees(lat)


# ------------------------------------------------------------------------------------------------ your own city
OSM_TYPEMAPS = ("typemap/osmNetconvert.typ.xml", "typemap/osmNetconvertUrbanDe.typ.xml",
                "typemap/osmNetconvertPedestrians.typ.xml")


@dataclass(frozen=True)
class BuiltWorld:
    """What :func:`build_world_from_osm` wrote: the network, buildings (if any), the scenario skeleton."""

    network: Network
    scenario_file: Path
    poly_file: Path | None


def build_world_from_osm(*, osm: Path | None = None, net: Path | None = None, out_dir: Path,
                         name: str | None = None, buildings: bool = True) -> BuiltWorld:
    """``mtwin world build --osm FILE.osm`` / ``--net FILE.net.xml``: a network and a scenario skeleton.

    With ``osm``: ``netconvert`` with SUMO's OSM type maps (roads, urban speeds, sidewalks), guessed
    signals, joined junctions and crossings, UTM projection; ``polyconvert`` extracts the building
    polygons (``osmPolyconvert.typ.xml``) the LiDAR ray caster occludes against. With ``net``: the given
    network is checked (it must load) and used as it is. Either way ``out_dir/<name>.yaml`` is a scenario
    skeleton with ``world: {kind: sumo, ...}`` and the map origin at the network's centre.

    Raises :class:`NetworkError` for a missing or unreadable input, or a network SUMO cannot load.
    """
    if (osm is None) == (net is None):
        raise NetworkError("give exactly one of osm= (an OpenStreetMap .osm file) or net= (a SUMO .net.xml)")
    src = Path(osm or net)  # type: ignore[arg-type]
    if not src.is_file():
        raise NetworkError(f"{'OSM' if osm else 'network'} file {src} does not exist")
    name = name or re.sub(r"[^A-Za-z0-9_]+", "_", src.name.split(".")[0]) or "city"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    poly_file: Path | None = None
    if osm is not None:
        net_file = out_dir / f"{name}.net.xml"
        try:
            tools.run("netconvert", [
                "--osm-files", str(src), "--type-files", ",".join(str(tools.data_file(t)) for t in OSM_TYPEMAPS),
                "--geometry.remove", "--roundabouts.guess", "--ramps.guess", "--junctions.join",
                "--tls.guess-signals", "--tls.discard-simple", "--tls.join", "--tls.default-type", "actuated",
                "--crossings.guess", "--proj.utm", "--output.street-names", "--output.original-names",
                "--output-file", str(net_file), "--no-warnings",
            ], what=f"converting {src}")
        except SumoToolError as err:
            raise NetworkError(f"cannot build a network from {src}: {err}") from None
        if buildings:
            poly_file = out_dir / f"{name}.poly.xml"
            try:
                tools.run("polyconvert", [
                    "--net-file", str(net_file), "--osm-files", str(src),
                    "--type-file", str(tools.data_file("typemap/osmPolyconvert.typ.xml")),
                    "--output-file", str(poly_file), "--no-warnings",
                ], what=f"extracting buildings from {src}")
            except SumoToolError as err:
                raise NetworkError(f"cannot extract polygons from {src}: {err}") from None
    else:
        net_file = src.resolve()
    check_loads(net_file)
    loc = read_location(net_file)
    origin = _net_centre(net_file, loc)
    network = Network(name=name, net_file=net_file, origin=origin, synthetic=False,
                      label=f"user network {name} (from {src.name})", poly_file=poly_file,
                      sidewalks=has_sidewalks(net_file), location=loc)
    scenario_file = out_dir / f"{name}.yaml"
    scenario_file.write_text(scenario_skeleton(network, out_dir), encoding="utf-8")
    return BuiltWorld(network, scenario_file, poly_file)


def scenario_skeleton(network: Network, folder: Path | None = None) -> str:
    """A scenario file for ``network`` to be written into ``folder``: the keys to edit, each with a comment
    (same layout as default.yaml). The network is named relative to the folder when it lies there."""
    inside = folder is not None and network.net_file.resolve().parent == Path(folder).resolve()
    net_ref = network.net_file.name if inside else str(network.net_file.resolve())
    x0, y0, x1, y1 = network.location.conv_boundary if network.location else (0, 0, 1000, 1000)
    half_w, half_h = max(100.0, (x1 - x0) / 2 - 100.0), max(100.0, (y1 - y0) / 2 - 100.0)
    poly = (f"\n  buildings: {{kind: osm, poly_file: {network.poly_file.name}}}   # OSM building polygons (LiDAR occlusion)"
            if network.poly_file else "\n  buildings: {kind: blocks}   # buildings on the city blocks between roads")
    return f"""# Scenario skeleton written by `mtwin world build` for {network.label}.
# Edit the area, the time window, the layout and the demand; every key is documented in default.yaml.
format_version: 1
name: {network.name}
description: {network.label}
seed: 1

world:
  kind: sumo                  # the SUMO world (tdrive_replay: the T-Drive replay)
  network: {net_ref}     # relative to this file, or beijing_cbd / real_streets{poly}
  demand: {{kind: random_trips, period_s: 1.0, pedestrians_period_s: 4.0, bicycles_period_s: 20.0}}
  warmup_s: 300.0             # simulated before the scenario starts (traffic builds up)

area:
  origin: [{network.origin[0]:.7f}, {network.origin[1]:.7f}]  # lon, lat of `map`: the network's centre
  box_m: [{-half_w:.0f}, {-half_h:.0f}, {half_w:.0f}, {half_h:.0f}]

time:
  start: "2008-02-02 16:10:00"  # the clock's label; SUMO starts at warm-up before it
  duration_s: 300.0
  slot_s: 0.1

rsus:
  layout: {{kind: hotspots, count: 8, min_separation_m: 60.0}}   # busiest signalised junctions
  mount_height_m: 6.0

cavs:
  count: 4

sites:
  count: 2
"""


# ------------------------------------------------------------------------------------------------ resolution
def load_network(name_or_path: str | Path, *, cbd: CbdGridSpec = CbdGridSpec()) -> Network:
    """A network by name (``beijing_cbd``, ``real_streets``) or by path to a ``.net.xml``.

    An unknown name is a :class:`NetworkError` listing the known ones; a file SUMO cannot load too.
    """
    text = str(name_or_path)
    if text == "beijing_cbd":
        return build_beijing_cbd(cbd)
    if text == "real_streets":
        return real_streets()
    path = Path(text).expanduser()
    if path.suffix in (".xml", ".gz") or path.exists():
        if not path.is_file():
            raise NetworkError(f"network file {path} does not exist")
        check_loads(path)
        loc = read_location(path)
        poly = path.with_name(path.name.replace(".net.xml", ".poly.xml"))
        return Network(name=path.name.split(".")[0], net_file=path.resolve(), origin=_net_centre(path, loc),
                       label=f"user network {path.name}", synthetic=False, sidewalks=has_sidewalks(path),
                       poly_file=poly if poly.is_file() and poly != path else None, location=loc)
    raise NetworkError(f"unknown network {text!r}: known networks are {', '.join(NETWORKS)}, or give a path to a "
                       ".net.xml file")
