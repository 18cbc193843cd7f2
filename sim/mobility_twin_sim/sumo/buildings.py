"""Static structures for the LiDAR: buildings on the city blocks between roads, or OSM building polygons.

:func:`city_blocks` takes a SUMO network, marks everything paved (every lane, sidewalks included, and
every junction area, widened by a setback), and keeps the faces that roads enclose: the city blocks.
:func:`buildings_on_blocks` puts buildings on them: each block is cut into lots on a grid (``lot_m``)
with passages between them (``gap_m``), and each lot gets a height drawn from the seed, so RSUs at
junctions look down streets between walls, and CAVs see facades and gaps, not an empty plane.
:func:`osm_buildings` reads the building polygons ``polyconvert`` extracted from an ``.osm`` file.

Everything is returned in the ``map`` frame (through the network's :class:`NetFrame`) as
:class:`mobility_twin_sim.lidar.Structures`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.ops import unary_union

from mobility_twin_sim.lidar import Structures
from mobility_twin_sim.sumo.network import NetFrame


@dataclass(frozen=True)
class BuildingRules:
    """How buildings are placed on blocks. Heights: CBD towers and older low-rise, drawn per lot."""

    setback_m: float = 3.0  # from the edge of the sidewalk
    lot_m: float = 60.0  # lot grid over each block
    gap_m: float = 12.0  # passages between buildings
    min_area_m2: float = 150.0
    height_m: tuple[float, float] = (12.0, 90.0)  # uniform range of building heights
    seed: int = 0


def _map_polygon(poly: Polygon, frame: NetFrame) -> Polygon:
    x, y = np.asarray(poly.exterior.coords).T
    mx, my = frame.to_map(x, y)
    return Polygon(np.column_stack([mx, my]))


def city_blocks(net_file: Path, frame: NetFrame, *, setback_m: float = 3.0, min_area_m2: float = 400.0
                ) -> list[Polygon]:
    """The faces the road network encloses (map frame), minus ``setback_m`` from every paved area."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withInternal=False, withPedestrianConnections=False)
    paved = []
    for edge in net.getEdges():
        for lane in edge.getLanes():
            shape = lane.getShape()
            if len(shape) >= 2:
                paved.append(LineString(shape).buffer(lane.getWidth() / 2.0 + setback_m, cap_style="flat"))
    for node in net.getNodes():
        shape = node.getShape()
        if len(shape) >= 3:
            paved.append(Polygon(shape).buffer(setback_m))
    if not paved:
        return []
    roads = unary_union(paved)
    x0, y0, x1, y1 = roads.bounds
    outside = box(x0, y0, x1, y1)
    faces = outside.difference(roads)
    parts = list(faces.geoms) if isinstance(faces, MultiPolygon) else [faces]
    blocks = []
    for p in parts:
        if p.is_empty or p.area < min_area_m2:
            continue
        if p.touches(outside.exterior) or p.intersects(outside.exterior):
            continue  # open to the edge of the network: not enclosed by roads
        blocks.append(_map_polygon(Polygon(p.exterior), frame))
    blocks.sort(key=lambda b: (round(b.centroid.x, 1), round(b.centroid.y, 1)))
    return blocks


def buildings_on_blocks(blocks: list[Polygon], rules: BuildingRules = BuildingRules()) -> Structures:
    """Cut each block into lots separated by passages; one building per lot, height from the seed."""
    rng = np.random.default_rng([rules.seed, 17])
    polygons, heights, ids = [], [], []
    for b, block in enumerate(blocks):
        x0, y0, x1, y1 = block.bounds
        # rotate lots with the block's main direction (its minimum rotated rectangle)
        rect = block.minimum_rotated_rectangle
        c = np.asarray(rect.exterior.coords)
        angle = float(np.degrees(np.arctan2(c[1, 1] - c[0, 1], c[1, 0] - c[0, 0])))
        local = affinity.rotate(block, -angle, origin=block.centroid)
        lx0, ly0, lx1, ly1 = local.bounds
        nx = max(1, round((lx1 - lx0) / rules.lot_m))
        ny = max(1, round((ly1 - ly0) / rules.lot_m))
        wx, wy = (lx1 - lx0) / nx, (ly1 - ly0) / ny
        for i in range(nx):
            for j in range(ny):
                lot = box(lx0 + i * wx + rules.gap_m / 2, ly0 + j * wy + rules.gap_m / 2,
                          lx0 + (i + 1) * wx - rules.gap_m / 2, ly0 + (j + 1) * wy - rules.gap_m / 2)
                part = local.intersection(lot)
                for piece in getattr(part, "geoms", [part]):
                    if not isinstance(piece, Polygon) or piece.area < rules.min_area_m2:
                        continue
                    polygons.append(affinity.rotate(piece, angle, origin=block.centroid).simplify(0.05))
                    heights.append(float(rng.uniform(*rules.height_m)))
                    ids.append(f"block{b}_{i}_{j}")
        del x0, y0, x1, y1
    return Structures.from_polygons(polygons, heights, ids)


def osm_buildings(poly_file: Path, frame: NetFrame, *, default_height_m: float = 15.0,
                  level_height_m: float = 3.2) -> Structures:
    """Building polygons of a ``polyconvert`` file (types ``building*``), in the map frame. Heights from the
    OSM ``height`` or ``building:levels`` parameters when present, else ``default_height_m``."""
    polygons, heights, ids = [], [], []
    root = ET.parse(poly_file).getroot()
    for el in root.iter("poly"):
        if not (el.get("type") or "").startswith("building"):
            continue
        pts = [tuple(float(v) for v in p.split(",")[:2]) for p in (el.get("shape") or "").split()]
        if len(pts) < 3:
            continue
        params = {p.get("key"): p.get("value") for p in el.iter("param")}
        height = default_height_m
        try:
            if "height" in params:
                height = float(str(params["height"]).split()[0])
            elif "building:levels" in params:
                height = float(params["building:levels"]) * level_height_m
        except ValueError:
            pass
        poly = Polygon(pts)
        if not poly.is_valid:
            poly = poly.buffer(0)
        if poly.is_empty or not isinstance(poly, Polygon):
            continue
        polygons.append(_map_polygon(poly, frame))
        heights.append(height)
        ids.append(el.get("id", ""))
    return Structures.from_polygons(polygons, heights, ids)
