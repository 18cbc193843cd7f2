"""Layouts to and from plain data: the ``config/layout.yaml`` of a real site, and the simulator's scenarios.

The file format (every key documented in ``config/layout.yaml``)::

    layout:
      name: cbd_pilot
      origin: [39.9087, 116.4600]          # latitude, longitude of the map origin (deg)
      area: [[-1500, -1500], [1500, -1500], [1500, 1500], [-1500, 1500]]
      sites:
        - {id: site_0, polygon: [[-1500, -1500], [0, -1500], [0, 1500], [-1500, 1500]]}
      rsus:
        - {id: rsu_00, x: 450.0, y: 350.0, z: 6.0, yaw: 0.0, site: site_1, range_m: 80.0}
      cavs:
        - {id: cav_7, lidar_height_m: 1.9, range_m: 60.0}
      edge_servers:
        - {id: edge_0, x: -750.0, y: 0.0, coverage_radius_m: 150.0, cpu_hz: 3.0e9, site: site_0}
      cloud: {x: 0.0, y: 0.0, cpu_hz: 3.5e9}

A key the format does not know, a value of the wrong type, a repeated id or an out-of-range value is an
error naming the key (``rsus[2].range_m must be > 0, got -5.0``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from mobility_twin_core.errors import LayoutError
from mobility_twin_core.model import Cav, Cloud, EdgeServer, Layout, Rsu, Site

_KEYS = {
    "layout": {"name", "origin", "area", "sites", "rsus", "cavs", "edge_servers", "cloud"},
    "sites": {"id", "polygon"},
    "rsus": {"id", "x", "y", "z", "yaw", "site", "range_m"},
    "cavs": {"id", "lidar_height_m", "range_m"},
    "edge_servers": {"id", "x", "y", "coverage_radius_m", "cpu_hz", "site"},
    "cloud": {"x", "y", "cpu_hz"},
}


def _check_keys(where: str, kind: str, entry: Any) -> dict:
    if not isinstance(entry, dict):
        raise LayoutError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = set(entry) - _KEYS[kind]
    if unknown:
        raise LayoutError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(_KEYS[kind])})")
    return entry


def _number(where: str, value: Any, default: float | None = None) -> float:
    if value is None:
        if default is None:
            raise LayoutError(f"{where} is required")
        return default
    if isinstance(value, bool):
        raise LayoutError(f"{where}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise LayoutError(f"{where}: expected a number, got {value!r}") from None
    if math.isnan(out) and not (default is not None and math.isnan(default)):
        raise LayoutError(f"{where}: expected a number, got NaN")
    return out


def _points(where: str, value: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list | tuple):
        raise LayoutError(f"{where}: expected a list of [x, y] points")
    out = []
    for i, p in enumerate(value):
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise LayoutError(f"{where}[{i}]: expected [x, y], got {p!r}")
        out.append((_number(f"{where}[{i}].x", p[0]), _number(f"{where}[{i}].y", p[1])))
    return tuple(out)


def _id(where: str, entry: dict) -> str:
    value = entry.get("id")
    if not isinstance(value, str) or not value:
        raise LayoutError(f"{where}.id: expected a non-empty string, got {value!r}")
    return value


def layout_from_dict(data: dict, *, source: str = "layout") -> Layout:
    """A validated :class:`Layout` from the plain data of a layout file (the mapping under ``layout:``)."""
    top = _check_keys(source, "layout", data)
    sites = tuple(
        Site(_id(f"{source}.sites[{i}]", e), _points(f"{source}.sites[{i}].polygon",
                                                      _check_keys(f"{source}.sites[{i}]", "sites", e).get("polygon")))
        for i, e in enumerate(top.get("sites") or ()))
    rsus = []
    for i, e in enumerate(top.get("rsus") or ()):
        w = f"{source}.rsus[{i}]"
        _check_keys(w, "rsus", e)
        rsus.append(Rsu(_id(w, e), _number(f"{w}.x", e.get("x")), _number(f"{w}.y", e.get("y")),
                        _number(f"{w}.z", e.get("z"), 6.0), _number(f"{w}.yaw", e.get("yaw"), 0.0),
                        str(e.get("site", "")), _number(f"{w}.range_m", e.get("range_m"), 80.0)))
    cavs = []
    for i, e in enumerate(top.get("cavs") or ()):
        w = f"{source}.cavs[{i}]"
        _check_keys(w, "cavs", e)
        cavs.append(Cav(_id(w, e), _number(f"{w}.lidar_height_m", e.get("lidar_height_m"), math.nan),
                        _number(f"{w}.range_m", e.get("range_m"), 60.0)))
    servers = []
    for i, e in enumerate(top.get("edge_servers") or ()):
        w = f"{source}.edge_servers[{i}]"
        _check_keys(w, "edge_servers", e)
        servers.append(EdgeServer(_id(w, e), _number(f"{w}.x", e.get("x")), _number(f"{w}.y", e.get("y")),
                                  _number(f"{w}.coverage_radius_m", e.get("coverage_radius_m")),
                                  _number(f"{w}.cpu_hz", e.get("cpu_hz")), str(e.get("site", ""))))
    cloud_data = _check_keys(f"{source}.cloud", "cloud", top.get("cloud") or {})
    cloud = Cloud(_number(f"{source}.cloud.x", cloud_data.get("x"), 0.0),
                  _number(f"{source}.cloud.y", cloud_data.get("y"), 0.0),
                  _number(f"{source}.cloud.cpu_hz", cloud_data.get("cpu_hz"), 3.5e9))
    origin = top.get("origin") or (math.nan, math.nan)
    if not isinstance(origin, list | tuple) or len(origin) != 2:
        raise LayoutError(f"{source}.origin: expected [latitude, longitude], got {origin!r}")
    layout = Layout(
        rsus=tuple(rsus), cavs=tuple(cavs), servers=tuple(servers), sites=sites, cloud=cloud,
        area=_points(f"{source}.area", top["area"]) if top.get("area") else (),
        origin=(_number(f"{source}.origin[0]", origin[0], math.nan), _number(f"{source}.origin[1]", origin[1], math.nan)),
        name=str(top.get("name", "")),
    )
    try:
        return layout.validated()
    except LayoutError as err:
        raise LayoutError(f"{source}: {err}") from None


def layout_to_dict(layout: Layout) -> dict:
    """The plain data of a layout (what :func:`layout_from_dict` reads back)."""
    def nan_none(v: float):
        return None if math.isnan(v) else float(v)

    out: dict = {"name": layout.name}
    if not any(math.isnan(v) for v in layout.origin):
        out["origin"] = [float(v) for v in layout.origin]
    if layout.area:
        out["area"] = [[float(x), float(y)] for x, y in layout.area]
    out["sites"] = [{"id": s.site_id, "polygon": [[float(x), float(y)] for x, y in s.polygon]} for s in layout.sites]
    out["rsus"] = [{"id": r.rsu_id, "x": float(r.x), "y": float(r.y), "z": float(r.z), "yaw": float(r.yaw),
                    "site": r.site_id, "range_m": float(r.range_m)} for r in layout.rsus]
    out["cavs"] = [{k: v for k, v in {"id": c.cav_id, "lidar_height_m": nan_none(c.lidar_height_m),
                                      "range_m": float(c.range_m)}.items() if v is not None} for c in layout.cavs]
    out["edge_servers"] = [{"id": s.server_id, "x": float(s.x), "y": float(s.y),
                            "coverage_radius_m": float(s.coverage_radius_m), "cpu_hz": float(s.cpu_hz), "site": s.site_id}
                           for s in layout.servers]
    out["cloud"] = {"x": float(layout.cloud.x), "y": float(layout.cloud.y), "cpu_hz": float(layout.cloud.cpu_hz)}
    return out


def read_section(path: str | Path, key: str, what: str, error: type[Exception] = LayoutError) -> tuple[Any, str]:
    """The top-level ``key:`` mapping of the YAML file at ``path`` (a ``what``: "layout file"...) and where it is
    (``<path>: <key>``, for errors); ``error`` naming the file when it cannot be read, is not YAML or lacks ``key``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise error(f"{what} {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict) or key not in data:
        raise error(f"{what} {path}: expected a top-level '{key}:' mapping")
    return data[key], f"{path}: {key}"


def load_layout(path: str | Path) -> Layout:
    """Read a layout file (YAML with a top-level ``layout:`` mapping)."""
    section, source = read_section(path, "layout", "layout file")
    return layout_from_dict(section, source=source)
