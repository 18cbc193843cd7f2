"""rviz markers of a :class:`TwinScene`: ``visualization_msgs/MarkerArray`` in frame ``map``.

Labels sit above their objects and a little north of them, so that they stay readable in the top-down
view of config/mobility_twin.rviz.

Needs the message classes, not a running node. :class:`MarkerBuilder` remembers which markers it sent
last time and adds a DELETE for every one that is gone (a track that vanished, a migration that faded), so
rviz never keeps a ghost; the track markers also carry a lifetime, so they disappear when twin_viz stops.

Namespaces (one rviz checkbox each): ``area``, ``sites``, ``site_labels``, ``rsus``, ``rsu_coverage``,
``rsu_labels``, ``servers``, ``server_coverage``, ``server_labels``, ``cloud``, ``tracks`` (oriented
boxes, id = track id), ``track_labels``, ``track_velocity`` (arrows: where the track is in
``arrow_horizon_s``), ``trails``, ``links`` (vehicle -> serving server, LINE_LIST), ``migrations``
(arrows between hosts that fade over ``migration_fade_s``), ``ground_truth`` (box outlines, simulation),
``routes`` (the CAVs' guided routes, one line strip per CAV), ``route_labels``, ``warnings`` (a red disc at
each predicted conflict point, lines from the parties found among the tracks), ``warning_labels`` (time to
conflict and probability).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from . import style
from .builder import source_kind
from .scene import TwinScene

COLOR_BY = ("source", "age")


@dataclass(frozen=True)
class MarkerStyle:
    """How the markers look. Lengths in metres, times in seconds."""

    color_by: str = "source"  # "source" (RSU only, CAV only, V2X only, fused) or "age" (age of information)
    age_max_s: float = 1.0  # with color_by="age": tracks this old or older are red
    arrow_horizon_s: float = 1.0  # velocity arrows end where the track will be after this long
    labels: bool = True  # id labels over the tracks
    trails: bool = True
    trail_points: int = 12  # at most this many points of each trail are drawn
    lifetime_s: float = 2.0  # track markers vanish this long after the last update (0: never)
    migration_fade_s: float = 5.0  # a migration arrow fades out over this long
    server_height_m: float = 40.0  # server pillar height at full load
    text_m: float = 2.5  # height of the track labels
    frame_id: str = "map"

    def __post_init__(self) -> None:
        if self.color_by not in COLOR_BY:
            raise ValueError(f"color_by must be one of {COLOR_BY}, got {self.color_by!r}")


def _rgba(colour: style.Colour, alpha: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=float(colour[0]), g=float(colour[1]), b=float(colour[2]), a=float(alpha))


def _pt(x: float, y: float, z: float = 0.0) -> Point:
    return Point(x=float(x), y=float(y), z=float(z))


def _marker_id(track_id: int) -> int:
    return int(track_id) & 0x7FFFFFFF  # Marker.id is int32


def _circle(x: float, y: float, r: float, z: float, n: int = 72) -> list[Point]:
    return [_pt(x + r * math.cos(a), y + r * math.sin(a), z) for a in np.linspace(0.0, 2.0 * math.pi, n + 1)]


class MarkerBuilder:
    """Builds the MarkerArray of a scene, with DELETEs for the markers of the previous call that are gone."""

    def __init__(self, marker_style: MarkerStyle = MarkerStyle()) -> None:
        self.style = marker_style
        self._sent: set[tuple[str, int]] = set()

    def build(self, scene: TwinScene, stamp: Time | None = None) -> MarkerArray:
        """Markers of ``scene``; ``stamp`` defaults to time 0 (rviz: the newest transform)."""
        self._header = Header(frame_id=self.style.frame_id, stamp=stamp or Time())
        self._markers: list[Marker] = []
        self._layout(scene)
        self._servers(scene)
        self._tracks(scene)
        self._links(scene)
        self._migrations(scene)
        self._ground_truth(scene)
        self._routes(scene)
        self._warnings(scene)
        keys = {(m.ns, m.id) for m in self._markers}
        deletes = [Marker(header=self._header, ns=ns, id=i, action=Marker.DELETE) for ns, i in sorted(self._sent - keys)]
        self._sent = keys
        return MarkerArray(markers=deletes + self._markers)

    def clear(self) -> MarkerArray:
        """One DELETEALL (for shutdown or a new layout)."""
        self._sent = set()
        return MarkerArray(markers=[Marker(header=Header(frame_id=self.style.frame_id), action=Marker.DELETEALL)])

    # ------------------------------------------------------------------------------------------ helpers
    def _add(self, ns: str, mid: int, mtype: int, *, colour: style.Colour = (1.0, 1.0, 1.0), alpha: float = 1.0,
             scale: tuple[float, float, float] = (1.0, 1.0, 1.0), position: tuple[float, float, float] = (0, 0, 0),
             yaw: float = 0.0, points: list[Point] | None = None, text: str = "", lifetime_s: float = 0.0) -> Marker:
        pose = Pose(position=_pt(*position),
                    orientation=Quaternion(z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0)))
        life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
        m = Marker(header=self._header, ns=ns, id=int(mid), type=mtype, action=Marker.ADD, pose=pose,
                   scale=Vector3(x=float(scale[0]), y=float(scale[1]), z=float(scale[2])),
                   color=_rgba(colour, alpha), lifetime=life, text=text)
        if points is not None:
            m.points = points
        self._markers.append(m)
        return m

    def _host_positions(self, scene: TwinScene) -> dict[str, tuple[float, float, float]]:
        hosts = {s.server_id: (s.x, s.y, self._server_height(s.load)) for s in scene.servers}
        if scene.layout is not None:
            for e in scene.layout.servers:
                hosts.setdefault(e.server_id, (e.x, e.y, self._server_height(0.0)))
            hosts["cloud"] = (scene.layout.cloud.x, scene.layout.cloud.y, 60.0)
        return hosts

    def _server_height(self, load: float) -> float:
        return 4.0 + self.style.server_height_m * min(max(load, 0.0), 1.0)

    # ------------------------------------------------------------------------------------------ parts
    def _layout(self, scene: TwinScene) -> None:
        layout = scene.layout
        if layout is None:
            return
        if layout.area:
            self._add("area", 0, Marker.LINE_STRIP, colour=(0.8, 0.8, 0.8), alpha=0.8, scale=(1.5, 0, 0),
                      points=[_pt(x, y) for x, y in layout.area])
        for k, site in enumerate(layout.sites):
            poly = site.polygon
            self._add("sites", k, Marker.LINE_STRIP, colour=(0.6, 0.6, 0.9), alpha=0.6, scale=(1.0, 0, 0),
                      points=[_pt(x, y, 0.05) for x, y in poly])
            cx = float(np.mean([p[0] for p in poly[:-1]]))
            cy = float(np.max([p[1] for p in poly]))
            stale = site.site_id in scene.stale
            self._add("site_labels", k, Marker.TEXT_VIEW_FACING, colour=(0.7, 0.7, 1.0), scale=(0, 0, 25.0),
                      position=(cx, cy - 30.0, 5.0), text=site.site_id + (" (stale)" if stale else ""))
        for k, r in enumerate(layout.rsus):
            stale = r.rsu_id in scene.stale
            colour = style.STALE_COLOUR if stale else style.RSU_COLOUR
            self._add("rsus", k, Marker.CYLINDER, colour=colour, scale=(3.0, 3.0, r.z), position=(r.x, r.y, r.z / 2))
            self._add("rsu_coverage", k, Marker.LINE_STRIP, colour=colour, alpha=0.5, scale=(0.5, 0, 0),
                      points=_circle(r.x, r.y, r.range_m, 0.1))
            self._add("rsu_labels", k, Marker.TEXT_VIEW_FACING, colour=colour, scale=(0, 0, 6.0),
                      position=(r.x, r.y + 6.0, r.z + 6.0), text=r.rsu_id + (" (stale)" if stale else ""))
        cloud = layout.cloud
        self._add("cloud", 0, Marker.SPHERE, colour=(0.9, 0.9, 0.9), alpha=0.8, scale=(20.0, 20.0, 20.0),
                  position=(cloud.x, cloud.y, 60.0))
        self._add("cloud", 1, Marker.TEXT_VIEW_FACING, colour=(0.9, 0.9, 0.9), scale=(0, 0, 14.0),
                  position=(cloud.x, cloud.y + 22.0, 80.0), text="cloud")

    def _servers(self, scene: TwinScene) -> None:
        servers = {s.server_id: s for s in scene.servers}
        specs = {e.server_id: e for e in scene.layout.servers} if scene.layout is not None else {}
        ids = sorted(set(specs) | set(servers))
        for k, sid in enumerate(ids):
            s = servers.get(sid)
            spec = specs.get(sid)
            x, y = (s.x, s.y) if s else (spec.x, spec.y)
            radius = s.radius if s else spec.coverage_radius_m
            h = self._server_height(s.load if s else 0.0)
            colour = style.load_colour(s.load) if s else style.STALE_COLOUR
            self._add("servers", k, Marker.CYLINDER, colour=colour, alpha=0.9, scale=(14.0, 14.0, h),
                      position=(x, y, h / 2))
            if radius > 0:
                self._add("server_coverage", k, Marker.LINE_STRIP, colour=style.server_colour(k), alpha=0.35,
                          scale=(1.0, 0, 0), points=_circle(x, y, radius, 0.2, 120))
            text = f"{sid}  {100 * s.load:.0f}%  {s.vehicles_served} veh" if s else f"{sid}  (no twin yet)"
            self._add("server_labels", k, Marker.TEXT_VIEW_FACING, colour=style.server_colour(k), scale=(0, 0, 12.0),
                      position=(x, y + 18.0, h + 10.0), text=text)

    def _track_colours(self, scene: TwinScene) -> list[style.Colour]:
        t = scene.tracks
        if self.style.color_by == "age":
            return [style.age_colour(float(a), self.style.age_max_s) for a in t.age]
        rsus = {r.rsu_id for r in scene.layout.rsus} if scene.layout is not None else set()
        cavs = {c.cav_id for c in scene.layout.cavs} if scene.layout is not None else set()
        return [style.SOURCE_COLOURS[source_kind(s, rsus, cavs)] for s in t.sources]

    def _tracks(self, scene: TwinScene) -> None:
        t = scene.tracks
        if t is None or not len(t):
            return
        st = self.style
        life = st.lifetime_s
        colours = self._track_colours(scene)
        trail_points, trail_colours = [], []
        for k in range(len(t)):
            tid = int(t.ids[k])
            mid = _marker_id(tid)
            x, y = float(t.xy[k, 0]), float(t.xy[k, 1])
            length, width, height = (max(float(d), 0.3) for d in t.dims[k])
            c = colours[k]
            self._add("tracks", mid, Marker.CUBE, colour=c, alpha=0.85, scale=(length, width, height),
                      position=(x, y, height / 2), yaw=float(t.yaw[k]), lifetime_s=life)
            if st.labels:
                self._add("track_labels", mid, Marker.TEXT_VIEW_FACING, colour=(1.0, 1.0, 1.0),
                          scale=(0, 0, st.text_m), position=(x, y + width / 2 + st.text_m, height + 1.5), text=str(tid),
                          lifetime_s=life)
            vx, vy = float(t.v[k, 0]), float(t.v[k, 1])
            if math.hypot(vx, vy) * st.arrow_horizon_s >= 0.5:
                z = height + 0.3
                self._add("track_velocity", mid, Marker.ARROW, colour=c, scale=(0.35, 0.8, 1.0),
                          points=[_pt(x, y, z), _pt(x + vx * st.arrow_horizon_s, y + vy * st.arrow_horizon_s, z)],
                          lifetime_s=life)
            trail = scene.trails.get(tid)
            if st.trails and trail is not None and len(trail) > 1:
                pts = trail[-st.trail_points:]
                for a, b in itertools.pairwise(pts):
                    trail_points += [_pt(a[0], a[1], 0.3), _pt(b[0], b[1], 0.3)]
                trail_colours += [_rgba(c, 0.6)] * (2 * (len(pts) - 1))
        if trail_points:
            m = self._add("trails", 0, Marker.LINE_LIST, scale=(0.4, 0, 0), points=trail_points, lifetime_s=life)
            m.colors = trail_colours

    def _links(self, scene: TwinScene) -> None:
        t = scene.tracks
        if t is None or not scene.links:
            return
        index = {int(i): k for k, i in enumerate(t.ids.tolist())}
        hosts = self._host_positions(scene)
        order = {sid: k for k, sid in enumerate(sorted(hosts.keys() - {"cloud"}))}
        points, colours = [], []
        for track, server in scene.links:
            k = index.get(int(track))
            host = hosts.get(server)
            if k is None or host is None:
                continue
            c = _rgba(style.server_colour(order.get(server, 0)), 0.5)
            points += [_pt(t.xy[k, 0], t.xy[k, 1], 2.0), _pt(host[0], host[1], host[2])]
            colours += [c, c]
        if points:
            m = self._add("links", 0, Marker.LINE_LIST, scale=(0.3, 0, 0), points=points,
                          lifetime_s=self.style.lifetime_s)
            m.colors = colours

    def _migrations(self, scene: TwinScene) -> None:
        hosts = self._host_positions(scene)
        ages = scene.migration_age_s or [0.0] * len(scene.migrations)
        fade = self.style.migration_fade_s
        for k, ((_twin, a, b), age) in enumerate(zip(scene.migrations, ages, strict=True)):
            if a not in hosts or b not in hosts or age >= fade:
                continue
            (x0, y0, z0), (x1, y1, z1) = hosts[a], hosts[b]
            self._add("migrations", k, Marker.ARROW, colour=style.MIGRATION_COLOUR, alpha=1.0 - age / fade,
                      scale=(3.0, 8.0, 12.0), points=[_pt(x0, y0, z0 + 5.0), _pt(x1, y1, z1 + 5.0)],
                      lifetime_s=fade)

    def _ground_truth(self, scene: TwinScene) -> None:
        g = scene.ground_truth
        if g is None or not len(g):
            return
        points = []
        for k in range(len(g)):
            corners = _box_corners(g.xy[k], g.dims[k, 0], g.dims[k, 1], g.yaw[k])
            for i in range(4):
                a, b = corners[i], corners[(i + 1) % 4]
                points += [_pt(a[0], a[1], 0.2), _pt(b[0], b[1], 0.2)]
        self._add("ground_truth", 0, Marker.LINE_LIST, colour=style.GROUND_TRUTH_COLOUR, alpha=0.5,
                  scale=(0.15, 0, 0), points=points, lifetime_s=self.style.lifetime_s)


    def _routes(self, scene: TwinScene) -> None:
        for k, r in enumerate(sorted(scene.routes, key=lambda r: r.vehicle_id)):
            self._add("routes", k, Marker.LINE_STRIP, colour=style.ROUTE_COLOUR, alpha=0.8, scale=(2.0, 0, 0),
                      points=[_pt(x, y, 0.6) for x, y in r.xy])
            x, y = r.xy[-1]
            self._add("route_labels", k, Marker.TEXT_VIEW_FACING, colour=style.ROUTE_COLOUR, scale=(0, 0, 6.0),
                      position=(x, y + 4.0, 6.0), text=f"{r.vehicle_id} destination")

    def _warnings(self, scene: TwinScene) -> None:
        life = self.style.lifetime_s
        for k, w in enumerate(sorted(scene.warnings, key=lambda w: w.warning_id)):
            x, y = w.point
            self._add("warnings", 2 * k, Marker.CYLINDER, colour=style.WARNING_COLOUR, alpha=0.35 + 0.5 * w.probability,
                      scale=(6.0, 6.0, 0.4), position=(x, y, 0.3), lifetime_s=life)
            if w.parties:
                points = [p for px, py in w.parties for p in (_pt(px, py, 1.5), _pt(x, y, 1.5))]
                self._add("warnings", 2 * k + 1, Marker.LINE_LIST, colour=style.WARNING_COLOUR, scale=(0.5, 0, 0),
                          points=points, lifetime_s=life)
            self._add("warning_labels", k, Marker.TEXT_VIEW_FACING, colour=style.WARNING_COLOUR, scale=(0, 0, 3.0),
                      position=(x, y + 5.0, 4.0), lifetime_s=life,
                      text=f"TTC {w.time_to_conflict:.1f} s  p {w.probability:.2f}")


def _box_corners(xy, length: float, width: float, yaw: float) -> np.ndarray:
    """(4, 2) corners of an oriented box, counter-clockwise."""
    c, s = math.cos(yaw), math.sin(yaw)
    half = np.array([[length, width], [-length, width], [-length, -width], [length, -width]]) / 2
    return np.asarray(xy, dtype=float) + half @ np.array([[c, s], [-s, c]])
