"""Render a :class:`TwinScene` to a PNG with matplotlib (Agg): a picture of the twin for people without rviz.

The left panel is the whole map (area, sites, edge servers with their coverage and load, RSU coverage,
every track, offloading links, migrations); on the right, one detail panel per site with RSUs zooms
onto the RSUs' coverage, where the tracks are drawn as oriented boxes with their trails and ids. Ground
truth, when the scene has it, is drawn faintly underneath. ROS-free.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from mobility_twin_core import Layout, Rsu

from . import style
from .builder import source_kind
from .scene import TrackView, TwinScene

MAX_DETAIL_PANELS = 2
DETAIL_MARGIN_M = 15.0  # around the RSUs and tracks of a detail panel
DETAIL_MIN_HALF_M = 40.0  # a detail panel shows at least 80 m
MAX_LABELLED_TRACKS = 40  # a detail panel with more tracks than this draws no ids (they would be a blur)


class SnapshotError(ValueError):
    """A scene or output that cannot be rendered."""


def render(scene: TwinScene, path: str | Path, *, size_px: tuple[int, int] = (1800, 1000), dpi: int = 100,
           detail: bool = True) -> Path:
    """Draw ``scene`` into the PNG ``path`` of exactly ``size_px`` (width, height) pixels; returns the path.

    Args:
        scene: what to draw; an empty scene (no layout, no tracks) gives a picture saying so.
        path: output file (its folder is created).
        size_px: (width, height) of the image in pixels.
        dpi: resolution used to lay out text (larger: smaller text relative to the image).
        detail: add the per-site detail panels (off: the map alone).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    width, height = (int(v) for v in size_px)
    if width < 200 or height < 150:
        raise SnapshotError(f"size_px {size_px} is too small: at least 200 x 150 pixels")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    panels = _detail_extents(scene) if detail else []
    if panels:
        grid = fig.add_gridspec(len(panels), 2, width_ratios=[height, max(0.6 * height, width - height)],
                                left=0.03, right=0.99, bottom=0.04, top=0.92, wspace=0.08, hspace=0.18)
        overview = fig.add_subplot(grid[:, 0])
        details = [fig.add_subplot(grid[k, 1]) for k in range(len(panels))]
    else:
        overview = fig.add_axes((0.05, 0.05, 0.9, 0.86))
        details = []
    painter = _Painter(scene)
    painter.draw(overview, extent=_overview_extent(scene), detail=False)
    overview.set_title("whole map", fontsize=10, loc="left")
    for ax, (name, extent) in zip(details, panels, strict=True):
        painter.draw(ax, extent=extent, detail=True)
        ax.set_title(name, fontsize=9, loc="left")
    painter.legend(overview)
    fig.suptitle(scene.title or default_title(scene), fontsize=13, x=0.03, ha="left", y=0.975)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path


def default_title(scene: TwinScene) -> str:
    name = scene.layout.name if scene.layout is not None and scene.layout.name else "twin"
    tracks = scene.tracks
    parts = [f"mobility_twin · {name}"]
    if tracks is not None:
        start = scene.layout_stamp  # the scenario start under the simulator
        if start is not None and start <= tracks.stamp <= start + 86400.0 + 60.0:
            parts.append(f"t = {tracks.stamp - start:.1f} s")
        elif tracks.stamp > 0:
            parts.append(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(tracks.stamp)))
        parts.append(f"{len(tracks)} tracks")
    if scene.ground_truth is not None:
        parts.append(f"{len(scene.ground_truth)} true vehicles")
    if scene.servers:
        parts.append(f"{len(scene.servers)} edge servers")
    parts.append(f"{len(scene.links)} offloading links")
    if scene.migrations:
        parts.append(f"{len(scene.migrations)} migration{'s' if len(scene.migrations) > 1 else ''}")
    return "  ·  ".join(parts)


# ---------------------------------------------------------------------------------------------- extents
Extent = tuple[float, float, float, float]  # x0, x1, y0, y1


def _pad(x0: float, x1: float, y0: float, y1: float, frac: float = 0.04, minimum: float = 20.0) -> Extent:
    px = max((x1 - x0) * frac, minimum / 2)
    py = max((y1 - y0) * frac, minimum / 2)
    return x0 - px, x1 + px, y0 - py, y1 + py


def _overview_extent(scene: TwinScene) -> Extent:
    xs, ys = [], []
    layout = scene.layout
    for x, y in layout.area if layout is not None else ():
        xs.append(x)
        ys.append(y)
    if not xs:
        for r in layout.rsus if layout is not None else ():
            xs += [r.x - r.range_m, r.x + r.range_m]
            ys += [r.y - r.range_m, r.y + r.range_m]
        for view in (scene.tracks, scene.ground_truth):
            if view is not None and len(view):
                xs += [float(view.xy[:, 0].min()), float(view.xy[:, 0].max())]
                ys += [float(view.xy[:, 1].min()), float(view.xy[:, 1].max())]
    if not xs:
        return -100.0, 100.0, -100.0, 100.0
    return _pad(min(xs), max(xs), min(ys), max(ys))


def _rsu_clusters(rsus: tuple[Rsu, ...]) -> list[list[Rsu]]:
    """RSUs grouped by overlapping coverage (connected components), in layout order."""
    parent = list(range(len(rsus)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(rsus):
        for j in range(i):
            b = rsus[j]
            if math.hypot(a.x - b.x, a.y - b.y) < a.range_m + b.range_m:
                parent[root(i)] = root(j)
    groups: dict[int, list[Rsu]] = {}
    for i, r in enumerate(rsus):
        groups.setdefault(root(i), []).append(r)
    return list(groups.values())


def _detail_extents(scene: TwinScene) -> list[tuple[str, Extent]]:
    """Zoomed views of the busiest groups of RSUs (overlapping coverage), framing the RSUs and the tracks
    inside their coverage."""
    tracks = scene.tracks
    panels = []
    for group in _rsu_clusters(scene.layout.rsus if scene.layout is not None else ()):
        xs = [r.x for r in group]
        ys = [r.y for r in group]
        count = 0
        if tracks is not None and len(tracks):
            covered = np.zeros(len(tracks), dtype=bool)
            for r in group:
                covered |= np.hypot(tracks.xy[:, 0] - r.x, tracks.xy[:, 1] - r.y) <= r.range_m
            count = int(covered.sum())
            xs += tracks.xy[covered, 0].tolist()
            ys += tracks.xy[covered, 1].tolist()
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        half = max(max(xs) - min(xs), max(ys) - min(ys), 2 * DETAIL_MIN_HALF_M) / 2 + DETAIL_MARGIN_M
        sites = sorted({r.site_id for r in group} - {""})
        name = (", ".join(sites) + ": " if sites else "") + ", ".join(r.rsu_id for r in group)
        panels.append((count, len(group), name, (cx - half, cx + half, cy - half, cy + half)))
    panels.sort(key=lambda p: (-p[0], -p[1], p[2]))
    return [(name, extent) for _, _, name, extent in panels[:MAX_DETAIL_PANELS]]


def _crowd_alpha(count: int, most: float) -> float:
    """Opacity of one of ``count`` overlapping lines: ``most`` for a few, fainter for many, never invisible."""
    return max(0.08, min(most, 2.0 / math.sqrt(max(count, 1))))


def _fit(extent: Extent, ax) -> Extent:
    """``extent`` grown along one axis to the shape of the axes box, so that equal scales fill the box."""
    x0, x1, y0, y1 = extent
    box = ax.get_position()
    fig_w, fig_h = ax.figure.get_size_inches()
    shape = (box.width * fig_w) / max(box.height * fig_h, 1e-9)
    w, h = x1 - x0, y1 - y0
    if w / h < shape:
        grow = (h * shape - w) / 2
        return x0 - grow, x1 + grow, y0, y1
    grow = (w / shape - h) / 2
    return x0, x1, y0 - grow, y1 + grow


def _inside(xy: np.ndarray, extent: Extent) -> np.ndarray:
    x0, x1, y0, y1 = extent
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


def _box_polygons(view: TrackView, grow: float = 0.0) -> np.ndarray:
    """(N, 4, 2) corners of the oriented boxes of ``view``."""
    n = len(view)
    half = np.maximum(view.dims[:, :2], 0.5) / 2 + grow
    local = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=float)[None] * half[:, None, :]
    c, s = np.cos(view.yaw)[:, None], np.sin(view.yaw)[:, None]
    x = local[..., 0] * c - local[..., 1] * s
    y = local[..., 0] * s + local[..., 1] * c
    return np.stack([x, y], axis=-1) + view.xy.reshape(n, 1, 2)


# ---------------------------------------------------------------------------------------------- drawing
class _Painter:
    def __init__(self, scene: TwinScene) -> None:
        self.scene = scene
        layout = scene.layout if scene.layout is not None else Layout()
        self.layout = layout
        self.rsu_ids = {r.rsu_id for r in layout.rsus}
        self.cav_ids = {c.cav_id for c in layout.cavs}
        self.specs = {e.server_id: e for e in layout.servers}
        ids = sorted(set(self.specs) | {s.server_id for s in scene.servers})
        self.server_index = {sid: k for k, sid in enumerate(ids)}
        self.hosts: dict[str, tuple[float, float]] = {e.server_id: (e.x, e.y) for e in layout.servers}
        self.hosts.update({s.server_id: (s.x, s.y) for s in scene.servers})
        if scene.layout is not None:
            self.hosts["cloud"] = (layout.cloud.x, layout.cloud.y)
        t = scene.tracks
        self.kinds = [] if t is None else [source_kind(s, self.rsu_ids, self.cav_ids) for s in t.sources]
        self.kinds_present: set[str] = set(self.kinds)

    def draw(self, ax, *, extent: Extent, detail: bool) -> None:
        from matplotlib.collections import PolyCollection
        from matplotlib.patches import Circle, Polygon

        scene, layout = self.scene, self.layout
        x0, x1, y0, y1 = _fit(extent, ax)
        span = max(x1 - x0, y1 - y0)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal", adjustable="box")
        ax.set_facecolor("#fbfbf8")
        ax.tick_params(labelsize=7)
        ax.grid(True, color="#e4e4e0", linewidth=0.6, zorder=0)
        ax.set_xlabel("x (m, east)", fontsize=7)
        if scene.layout is None and scene.tracks is None:
            ax.text(0.5, 0.5, "nothing received yet", transform=ax.transAxes, ha="center", va="center", fontsize=14,
                    color="#888888")
            return
        if layout.area:
            ax.add_patch(Polygon(np.asarray(layout.area, dtype=float), closed=True, facecolor="#f1f1ec",
                                 edgecolor="#9a9a90", linewidth=1.2, zorder=1))
        for site in layout.sites:
            stale = site.site_id in scene.stale
            poly = np.asarray(site.polygon, dtype=float)
            ax.add_patch(Polygon(poly, closed=True, fill=False, edgecolor="#8888bb", linewidth=0.9,
                                 linestyle="--", zorder=2))
            if not detail:
                cx, cy = poly[:-1, 0].mean(), poly[:, 1].max() - 0.03 * span
                ax.text(cx, cy, site.site_id + (" (stale)" if stale else ""), ha="center", va="top", fontsize=9,
                        color="#6666aa", zorder=9)
        for sid, k in self.server_index.items():
            spec = self.specs.get(sid)
            radius = spec.coverage_radius_m if spec else next(s.radius for s in scene.servers if s.server_id == sid)
            if radius > 0 and not detail and sid in self.hosts:
                ax.add_patch(Circle(self.hosts[sid], radius, fill=False, edgecolor=style.server_colour(k),
                                    linewidth=0.8, linestyle=(0, (4, 4)), alpha=0.45, zorder=2))
        for r in layout.rsus:
            if r.rsu_id in scene.stale:  # an outline only: its coverage is not what the twin sees now
                ax.add_patch(Circle((r.x, r.y), r.range_m, fill=False, linestyle=(0, (3, 3)),
                                    edgecolor=(*style.STALE_COLOUR, 0.8), linewidth=0.8, zorder=3))
            else:
                ax.add_patch(Circle((r.x, r.y), r.range_m, facecolor=(*style.RSU_COLOUR, 0.09),
                                    edgecolor=(*style.RSU_COLOUR, 0.45), linewidth=0.7, zorder=3))
        self._signals(ax, detail)
        if scene.ground_truth is not None and len(scene.ground_truth):
            g = scene.ground_truth
            if detail:
                ax.add_collection(PolyCollection(_box_polygons(g, grow=0.4), facecolors="none",
                                                 edgecolors=(*style.GROUND_TRUTH_DARK, 0.8),
                                                 linewidths=0.7, linestyles="--", zorder=4))
            else:
                ax.scatter(g.xy[:, 0], g.xy[:, 1], s=4, color="#c8c8c8", zorder=4, linewidths=0)
        self._links(ax, detail)
        self._routes(ax, detail)
        self._tracks(ax, extent, detail, span)
        self._warnings(ax, detail)
        for r in layout.rsus:
            colour = style.STALE_COLOUR if r.rsu_id in scene.stale else style.RSU_COLOUR
            ax.plot(r.x, r.y, marker="^", markersize=7 if detail else 5, color=colour, markeredgecolor="#205060",
                    linestyle="none", zorder=8)
            if detail:
                ax.annotate(r.rsu_id + (" (stale)" if r.rsu_id in scene.stale else ""), (r.x, r.y),
                            xytext=(5, 5), textcoords="offset points", fontsize=7, color="#205060", zorder=9)
        self._servers(ax, extent)
        if not detail:
            self._migrations(ax)
        ax.set_ylabel("y (m, north)", fontsize=7)

    def _signals(self, ax, detail: bool) -> None:
        """Traffic signals as dots at their junctions, coloured by their state (SignalView.colour_name)."""
        signals = self.scene.signals
        if not signals:
            return
        xy = np.array([(s.x, s.y) for s in signals], dtype=float)
        colours = [style.SIGNAL_COLOURS[s.colour_name] for s in signals]
        ax.scatter(xy[:, 0], xy[:, 1], s=28 if detail else 10, c=colours, edgecolors="#303030",
                   linewidths=0.4, marker="o", zorder=5)

    def _routes(self, ax, detail: bool) -> None:
        """The CAVs' guided routes: a thick translucent line each, a ring at the destination."""
        for r in self.scene.routes:
            ax.plot(r.xy[:, 0], r.xy[:, 1], color=(*style.ROUTE_COLOUR, 0.55), linewidth=4.0 if detail else 2.5,
                    solid_capstyle="round", zorder=5)
            ax.plot(*r.xy[-1], marker="o", markersize=8, markerfacecolor="none", markeredgecolor=style.ROUTE_COLOUR,
                    markeredgewidth=1.5, linestyle="none", zorder=6)

    def _warnings(self, ax, detail: bool) -> None:
        """Collision warnings: a red star at the conflict point, lines to the parties found among the tracks."""
        for w in self.scene.warnings:
            for px, py in w.parties:
                ax.plot([px, w.point[0]], [py, w.point[1]], color=style.WARNING_COLOUR, linewidth=1.0, zorder=10)
            ax.plot(*w.point, marker="*", markersize=14 if detail else 9, color=style.WARNING_COLOUR,
                    markeredgecolor="#400000", markeredgewidth=0.5, linestyle="none", zorder=11)
            if detail:
                ax.annotate(f"TTC {w.time_to_conflict:.1f} s, p {w.probability:.2f}", w.point, xytext=(6, -10),
                            textcoords="offset points", fontsize=7, color="#a00000", zorder=11)

    def _links(self, ax, detail: bool) -> None:
        from matplotlib.collections import LineCollection

        t = self.scene.tracks
        if t is None or not self.scene.links:
            return
        index = {int(i): k for k, i in enumerate(t.ids.tolist())}
        segments, colours = [], []
        alpha = _crowd_alpha(len(self.scene.links), 0.4 if detail else 0.3)
        for track, server in self.scene.links:
            k = index.get(int(track))
            if k is None or server not in self.hosts:
                continue
            segments.append([t.xy[k], self.hosts[server]])
            colours.append((*style.server_colour(self.server_index.get(server, 0)), alpha))
        if segments:
            ax.add_collection(LineCollection(segments, colors=colours, linewidths=0.7, zorder=5))

    def _tracks(self, ax, extent: Extent, detail: bool, span: float) -> None:
        from matplotlib.collections import LineCollection, PolyCollection

        t = self.scene.tracks
        if t is None or not len(t):
            return
        colours = np.array([style.SOURCE_COLOURS[k] for k in self.kinds])
        trails, trail_colours = [], []
        alpha = _crowd_alpha(len(t), 0.6)
        for k, tid in enumerate(t.ids.tolist()):
            trail = self.scene.trails.get(int(tid))
            if trail is not None and len(trail) > 1:
                trails.append(np.asarray(trail)[:, :2])
                trail_colours.append((*colours[k], alpha))
        if trails:
            ax.add_collection(LineCollection(trails, colors=trail_colours, linewidths=1.2 if detail else 0.8, zorder=6))
        if not detail:
            ax.scatter(t.xy[:, 0], t.xy[:, 1], s=10, c=colours, edgecolors="#333333", linewidths=0.3, zorder=7)
            return
        ax.add_collection(PolyCollection(_box_polygons(t), facecolors=colours, edgecolors="#202020", linewidths=0.5,
                                         zorder=7))
        inside = _inside(t.xy, extent)
        moving = inside & (np.hypot(t.v[:, 0], t.v[:, 1]) > 0.5)
        if moving.any():
            ax.quiver(t.xy[moving, 0], t.xy[moving, 1], t.v[moving, 0], t.v[moving, 1], angles="xy", scale_units="xy",
                      scale=1.0, width=0.0025, color=colours[moving], zorder=7, alpha=0.9)
        if int(inside.sum()) <= MAX_LABELLED_TRACKS:
            offset = 0.012 * span
            for k in np.flatnonzero(inside):
                ax.text(t.xy[k, 0] + offset, t.xy[k, 1] + offset, str(int(t.ids[k])), fontsize=6, color="#303030",
                        zorder=9, clip_on=True)

    def _servers(self, ax, extent: Extent) -> None:
        servers = {s.server_id: s for s in self.scene.servers}
        for sid, k in self.server_index.items():
            if sid not in self.hosts:
                continue
            x, y = self.hosts[sid]
            if not (extent[0] <= x <= extent[1] and extent[2] <= y <= extent[3]):
                continue
            s = servers.get(sid)
            colour = style.load_colour(s.load) if s else style.STALE_COLOUR
            ax.plot(x, y, marker="s", markersize=11, color=colour, markeredgecolor=style.server_colour(k),
                    markeredgewidth=2.0, linestyle="none", zorder=10)
            text = f"{sid}\n{100 * s.load:.0f}% · {s.vehicles_served} veh" if s else f"{sid}\n(no twin)"
            ax.annotate(text, (x, y), xytext=(8, -4), textcoords="offset points", fontsize=7, va="top",
                        color="#202020", zorder=11,
                        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": style.server_colour(k),
                              "alpha": 0.85, "linewidth": 0.8})
        if "cloud" in self.hosts:
            x, y = self.hosts["cloud"]
            ax.plot(x, y, marker="h", markersize=10, color="#dddddd", markeredgecolor="#777777", linestyle="none",
                    zorder=10)
            ax.annotate("cloud", (x, y), xytext=(7, 4), textcoords="offset points", fontsize=7, color="#555555",
                        zorder=11)

    def _migrations(self, ax) -> None:
        scene = self.scene
        ages = scene.migration_age_s or [0.0] * len(scene.migrations)
        for (_twin, a, b), age in zip(scene.migrations, ages, strict=True):
            if a not in self.hosts or b not in self.hosts:
                continue
            alpha = max(0.25, 1.0 - age / 10.0)
            ax.annotate("", xy=self.hosts[b], xytext=self.hosts[a], zorder=12,
                        arrowprops={"arrowstyle": "-|>", "color": (*style.MIGRATION_COLOUR, alpha), "linewidth": 2.0,
                                    "connectionstyle": "arc3,rad=0.2", "shrinkA": 8, "shrinkB": 8})

    def legend(self, ax) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [Patch(facecolor=style.SOURCE_COLOURS[k], edgecolor="#202020", label=f"track: {style.SOURCE_LABELS[k]}")
                   for k in style.SOURCE_LABELS if k in self.kinds_present]
        if self.layout.rsus:
            handles.append(Line2D([], [], marker="^", color=style.RSU_COLOUR, markeredgecolor="#205060",
                                  linestyle="none", label="RSU and LiDAR coverage"))
        if self.scene.stale & self.rsu_ids:
            handles.append(Line2D([], [], marker="^", color=style.STALE_COLOUR, markeredgecolor="#205060",
                                  linestyle=(0, (3, 3)), label="stale RSU (no recent data)"))
        if self.server_index:
            handles.append(Line2D([], [], marker="s", color=style.load_colour(0.5), markeredgecolor="#555555",
                                  linestyle="none", label="edge server (fill: load, green idle to red full)"))
        if self.scene.links:
            handles.append(Line2D([], [], color="#888888", linewidth=0.8, label="offloading link"))
        if self.scene.migrations:
            handles.append(Line2D([], [], color=style.MIGRATION_COLOUR, linewidth=2, label="twin migration"))
        if self.scene.ground_truth is not None:
            handles.append(Line2D([], [], marker="o", color="#c8c8c8", linestyle="none", markersize=4,
                                  label="ground truth"))
        if self.scene.routes:
            handles.append(Line2D([], [], color=style.ROUTE_COLOUR, linewidth=3, alpha=0.6,
                                  label=f"guided CAV route ({len(self.scene.routes)})"))
        if self.scene.warnings:
            handles.append(Line2D([], [], marker="*", color=style.WARNING_COLOUR, linestyle="none", markersize=9,
                                  label=f"collision warning ({len(self.scene.warnings)})"))
        if self.scene.signals:
            handles.append(Line2D([], [], marker="o", color=style.SIGNAL_COLOURS["green"], markeredgecolor="#303030",
                                  linestyle="none", markersize=5, label="traffic signal (a link green / changing / all red)"))
        if handles:
            ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.9)
