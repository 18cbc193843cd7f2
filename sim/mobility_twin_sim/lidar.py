"""Synthetic rotating LiDAR: ray casting against the ground, static structures and the boxes of all vehicles.

The beam pattern is ``channels`` elevations evenly spread over the vertical field of view times
``azimuth_steps`` azimuths over 360 degrees (a 32 x 1024 sensor casts 32,768 rays per frame). Rays are
cast with open3d's ray-casting scene (Embree) against one triangle mesh holding every vehicle box; the
ground is the plane z = 0 of the map frame, intersected analytically. Occlusion falls out of the ray
casting: the first hit wins. Range noise (Gaussian) and dropout are drawn from a generator seeded by
(scenario seed, sensor index, frame index), so the same seed gives identical clouds whatever order
sensors are simulated in.

Static structures (:class:`Structures`: buildings, walls, as vertical prisms on the ground) are an optional
second mesh, built once per :class:`Lidar`; what a sensor at a fixed pose (an RSU) sees of them is cast
once and remembered, so buildings cost a roadside sensor nothing per frame. They occlude vehicles and
return points of their own (``hit_vehicle == STRUCTURE``): clutter that is not a vehicle.

Points are returned in the sensor frame (x forward, y left, z up, REP 103), with intensity and ring,
plus which vehicle each point hit (for evaluation only; a real sensor does not know it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import open3d as o3d

from mobility_twin_sim.scenario import LidarSection

NO_HIT = np.uint32(0xFFFFFFFF)
GROUND = -1  # hit_vehicle value of ground points
STRUCTURE = -2  # hit_vehicle value of points on static structures (buildings)
STATIC_CACHE = 64  # sensor poses whose static-structure ranges are remembered (RSUs do not move)
# 12 triangles of a box whose 8 corners are ordered (x-, x+) x (y-, y+) x (z-, z+), z fastest
_BOX_TRIANGLES = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
     [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], dtype=np.uint32,
)
_CORNER_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (0, 1)], dtype=np.float64)


@dataclass(frozen=True)
class Boxes:
    """Oriented vehicle boxes in the map frame: centre x, y (m), yaw (rad), length, width, height (m).

    The box stands on the ground: it spans z in [0, height].
    """

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    length: np.ndarray
    width: np.ndarray
    height: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def corners(self) -> np.ndarray:
        """(N, 8, 3) corners in the map frame."""
        half = np.stack([self.length / 2, self.width / 2, self.height], axis=1)  # (N, 3)
        local = _CORNER_SIGNS[None, :, :] * half[:, None, :]  # (N, 8, 3), z in [0, height]
        c, s = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        x = self.x[:, None] + c * local[..., 0] - s * local[..., 1]
        y = self.y[:, None] + s * local[..., 0] + c * local[..., 1]
        return np.stack([x, y, local[..., 2]], axis=2)


@dataclass(frozen=True)
class Structures:
    """Static structures as vertical prisms standing on the ground: footprint rings in the map frame (m,
    each an (k, 2) array, not closed, any orientation), heights (m) and ids."""

    footprints: tuple[np.ndarray, ...]
    heights: np.ndarray
    ids: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.footprints)

    @classmethod
    def from_polygons(cls, polygons: Sequence, heights: Sequence[float], ids: Sequence[str] = ()) -> Structures:
        """From shapely polygons (their exterior rings; holes are filled)."""
        rings = tuple(np.asarray(p.exterior.coords, dtype=np.float64)[:-1, :2] for p in polygons)
        return cls(rings, np.asarray(heights, dtype=np.float64), tuple(ids))

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """(vertices (V, 3) float32, triangles (T, 3) uint32): walls and roofs of every prism."""
        import shapely
        from shapely.geometry import Polygon

        verts: list[np.ndarray] = []
        tris: list[np.ndarray] = []
        base = 0
        for ring, h in zip(self.footprints, self.heights, strict=True):
            k = len(ring)
            if k < 3 or h <= 0:
                continue
            bottom = np.column_stack([ring, np.zeros(k)])
            top = np.column_stack([ring, np.full(k, float(h))])
            i = np.arange(k)
            j = (i + 1) % k
            walls = np.concatenate([np.stack([i, j, k + j], 1), np.stack([i, k + j, k + i], 1)])
            roof = shapely.constrained_delaunay_triangles(Polygon(ring))
            roof_xy = [np.asarray(t.exterior.coords)[:3, :2] for t in roof.geoms]
            roof_v = np.array([[x, y, float(h)] for tri in roof_xy for x, y in tri]).reshape(-1, 3)
            roof_t = 2 * k + np.arange(len(roof_v)).reshape(-1, 3)
            verts.append(np.concatenate([bottom, top, roof_v]))
            tris.append(np.concatenate([walls, roof_t]) + base)
            base += 2 * k + len(roof_v)
        if not verts:
            return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
        return np.concatenate(verts).astype(np.float32), np.concatenate(tris).astype(np.uint32)


@dataclass(frozen=True)
class SensorPose:
    """Sensor origin in the map frame (m) and yaw (rad); the sensor is level (no roll or pitch)."""

    x: float
    y: float
    z: float
    yaw: float


@dataclass(frozen=True)
class Scan:
    """One LiDAR frame. ``points``: (N, 3) float32 in the sensor frame; ``hit_vehicle``: the box index
    each point hit (GROUND for the ground)."""

    points: np.ndarray
    intensity: np.ndarray  # (N,) float32 in [0, 1]
    ring: np.ndarray  # (N,) uint16: the laser (elevation) that fired
    hit_vehicle: np.ndarray
    rays: int  # rays cast, returns or not (the sensor's points per frame)

    def __len__(self) -> int:
        return len(self.points)


class Lidar:
    """A beam pattern; :meth:`scan_many` casts several sensors' frames in one call. ``structures``: static
    buildings that every frame of this LiDAR also sees (None: an empty plane with vehicles)."""

    def __init__(self, config: LidarSection, structures: Structures | None = None) -> None:
        self.config = config
        self.structures = structures
        self._static_scene = None
        self._static_cache: OrderedDict[tuple[float, float, float, float], np.ndarray] = OrderedDict()
        if structures is not None and len(structures):
            vertices, triangles = structures.mesh()
            if len(triangles):
                self._static_scene = o3d.t.geometry.RaycastingScene()
                self._static_scene.add_triangles(o3d.core.Tensor(vertices), o3d.core.Tensor(triangles))
                rings = [r for r, h in zip(structures.footprints, structures.heights, strict=True)
                         if len(r) >= 3 and h > 0]
                self._walls = (np.concatenate([r for r in rings]), np.concatenate([np.roll(r, -1, axis=0) for r in rings]))
        lo, hi = np.radians(config.vertical_fov_deg)
        elevation = np.linspace(lo, hi, config.channels) if config.channels > 1 else np.array([lo])
        azimuth = np.arange(config.azimuth_steps) * (2 * np.pi / config.azimuth_steps)
        el, az = np.meshgrid(elevation, azimuth, indexing="ij")  # (channels, steps)
        self.directions = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
        self.directions = self.directions.reshape(-1, 3)  # sensor frame, ring-major
        self._elevation = elevation
        self._directions32 = self.directions.astype(np.float32)
        with np.errstate(divide="ignore"):  # distance to the ground along each ray, per metre of height
            self._ground_per_metre = np.where(self.directions[:, 2] < -1e-9, -1.0 / self.directions[:, 2], np.inf)
        self.ring = np.repeat(np.arange(config.channels, dtype=np.uint16), config.azimuth_steps)

    @property
    def rays_per_frame(self) -> int:
        return len(self.directions)

    def scan_many(self, poses: list[SensorPose], boxes: Boxes, rngs: list[np.random.Generator],
                  exclude: list[int | None] | None = None, cull: bool = True) -> list[Scan]:
        """Cast one frame per pose against the same world. ``exclude[i]``: a box the i-th sensor ignores
        (the vehicle it is mounted on: its own returns are filtered, as real drivers do).

        With ``cull`` (the default), only rays that can reach a vehicle are cast against the boxes: those
        in an azimuth column some box within range covers, and that do not meet the ground before that
        box's nearest horizontal distance. The others hit the ground (intersected analytically) or
        nothing. The sensor's own box is intersected analytically for every ray. The result is the same
        as casting every ray (``cull=False``, kept for that check); a frame costs a fraction of it.

        With static structures, every ray is also cast against them (once per pose, remembered for poses
        that repeat); a ray that meets a structure before a box's nearest distance is not cast at the boxes.
        """
        exclude = exclude or [None] * len(poses)
        n = self.rays_per_frame
        if not poses:
            return []
        static = [self.static_ranges(p, cull) for p in poses] if self._static_scene is not None else [None] * len(poses)
        rays = [self._candidates(pose, boxes, own, ts) if cull else np.arange(n)
                for pose, own, ts in zip(poses, exclude, static, strict=True)]
        origins = np.concatenate([np.broadcast_to([p.x, p.y, p.z], (len(r), 3)) for p, r in zip(poses, rays, strict=True)])
        dirs = np.concatenate([self._world_directions(p, r) for p, r in zip(poses, rays, strict=True)])
        t_cast, box_cast = self._cast_boxes(origins, dirs, boxes, self._within_range(poses, boxes))
        scans, start = [], 0
        for i, pose in enumerate(poses):
            cand = rays[i]
            tb = np.full(n, np.inf)
            bi = np.full(n, GROUND, dtype=np.int64)
            tb[cand] = t_cast[start:start + len(cand)]
            bi[cand] = box_cast[start:start + len(cand)]
            start += len(cand)
            lost = np.zeros(n, dtype=bool)
            if exclude[i] is not None:
                own = exclude[i]
                near_own = self._may_hit_own_box(pose, boxes, own)
                t_own = np.full(n, np.inf)
                t_own[near_own] = _ray_box_entry(np.array([pose.x, pose.y, pose.z]),
                                                 self._world_directions(pose, near_own), boxes, own)
                lost = (bi == own) | (t_own < tb)  # the own box comes first
                if static[i] is not None:
                    lost &= ~(static[i] < t_own)  # unless a structure stands in between
                tb[lost] = np.inf  # self-returns filtered: the ray is lost, not continued
                bi[lost] = GROUND
            tg = pose.z * self._ground_per_metre  # the ground plane, analytically
            if static[i] is not None:
                hit_static = (static[i] < tb) & (static[i] < tg)
                tb = np.where(hit_static, static[i], tb)
                bi = np.where(hit_static, STRUCTURE, bi)
            hit_box = tb < tg
            t = np.where(hit_box, tb, tg)
            ok = np.isfinite(t) & ~lost & (t >= self.config.min_range_m) & (t <= self.config.max_range_m)
            index = np.flatnonzero(ok)
            rng = rngs[i]
            noise = rng.standard_normal(len(index), dtype=np.float32) * np.float32(self.config.range_noise_m)
            keep = rng.random(len(index), dtype=np.float32) >= self.config.dropout
            index = index[keep]
            noisy = t[index].astype(np.float32) + noise[keep]
            pts = np.take(self._directions32, index, axis=0) * noisy[:, None]  # (take: 5x faster than [index])
            vehicle = np.where(hit_box[index], bi[index], GROUND)
            intensity = np.where(vehicle == GROUND, np.float32(0.1),
                                 np.where(vehicle == STRUCTURE, np.float32(0.3), np.float32(0.6)))
            intensity += np.float32(0.05) * rng.random(len(index), dtype=np.float32)
            scans.append(Scan(pts, intensity, self.ring[index], vehicle.astype(np.int32), n))
        return scans

    def static_ranges(self, pose: SensorPose, cull: bool = True) -> np.ndarray | None:
        """Distance (m) along every ray of a sensor at ``pose`` to the first static structure (inf: none);
        None without structures. Remembered for the last poses seen (RSUs stand still).

        With ``cull``, only rays that can reach a structure are cast: those in an azimuth column some wall
        within range covers that do not meet the ground before that wall's nearest horizontal distance
        (the same argument as for the boxes; the result equals casting every ray)."""
        if self._static_scene is None:
            return None
        key = (pose.x, pose.y, pose.z, pose.yaw)
        hit = self._static_cache.get(key) if cull else None
        if hit is not None:
            self._static_cache.move_to_end(key)
            return hit
        rays = self._static_candidates(pose) if cull else np.arange(self.rays_per_frame)
        t = np.full(self.rays_per_frame, np.inf)
        if len(rays):
            dirs = self._world_directions(pose, rays)
            origins = np.broadcast_to(np.array([pose.x, pose.y, pose.z]), dirs.shape)
            cast = o3d.core.Tensor(np.hstack([origins, dirs]).astype(np.float32))
            t[rays] = self._static_scene.cast_rays(cast)["t_hit"].numpy()
        t.setflags(write=False)
        if cull:
            self._static_cache[key] = t
            if len(self._static_cache) > STATIC_CACHE:
                self._static_cache.popitem(last=False)
        return t

    def _static_candidates(self, pose: SensorPose) -> np.ndarray:
        """Rays (ring-major) of a sensor at ``pose`` that may hit a structure's wall or roof."""
        a, b = self._walls
        steps = self.config.azimuth_steps
        p = np.array([pose.x, pose.y])
        d = b - a
        length2 = np.maximum((d * d).sum(1), 1e-12)
        u = np.clip(((p - a) * d).sum(1) / length2, 0.0, 1.0)
        dist = np.hypot(*(a + u[:, None] * d - p).T)  # nearest horizontal distance to each wall segment
        near = np.flatnonzero(dist <= self.config.max_range_m)
        if len(near) == 0:
            return np.zeros(0, dtype=np.int64)
        nearest = np.full(steps, np.inf)
        step = 2 * np.pi / steps
        ang_a = np.arctan2(a[near, 1] - pose.y, a[near, 0] - pose.x) - pose.yaw
        ang_b = np.arctan2(b[near, 1] - pose.y, b[near, 0] - pose.x) - pose.yaw
        span = (ang_b - ang_a + np.pi) % (2 * np.pi) - np.pi  # signed, |span| < pi: a wall seen from outside
        lo = np.where(span >= 0, ang_a, ang_a + span)
        for start, width, reach in zip(lo.tolist(), np.abs(span).tolist(), dist[near].tolist(), strict=True):
            if reach <= 1e-6:  # standing on the wall: every direction
                np.minimum(nearest, 0.0, out=nearest)
                continue
            first = int(np.floor(start / step)) - 1  # one column of margin on each side
            last = int(np.ceil((start + width) / step)) + 1
            cols = np.arange(first, last + 1) % steps
            nearest[cols] = np.minimum(nearest[cols], reach)
        el = self._elevation
        with np.errstate(divide="ignore"):
            ground_reach = np.where(el < 0, pose.z / np.tan(-el), np.inf)
        mask = (ground_reach[:, None] >= nearest[None, :] - 1e-6) & np.isfinite(nearest)[None, :]
        return np.flatnonzero(mask)

    def _world_directions(self, pose: SensorPose, rays) -> np.ndarray:
        c, s = np.cos(pose.yaw), np.sin(pose.yaw)
        d = np.take(self.directions, rays, axis=0)
        return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)

    def _may_hit_own_box(self, pose: SensorPose, boxes: Boxes, own: int) -> np.ndarray:
        """Rays (whole rings) that can enter the box the sensor is mounted on: falling rays that cross its
        roof height within its footprint's reach (a ray crossing the roof height outside it only gets farther)."""
        reach = float(np.hypot(boxes.x[own] - pose.x, boxes.y[own] - pose.y) + 0.5 * np.hypot(boxes.length[own],
                                                                                               boxes.width[own]))
        above = pose.z - float(boxes.height[own])
        el = self._elevation
        with np.errstate(divide="ignore"):
            crossing = np.where(el < 0, max(above, 0.0) / np.tan(-el), np.inf)
        rings = np.flatnonzero(crossing <= reach + 1e-6) if above > 0 else np.arange(len(el))
        steps = self.config.azimuth_steps
        return (rings[:, None] * steps + np.arange(steps)[None, :]).ravel()

    def _candidates(self, pose: SensorPose, boxes: Boxes, own: int | None,
                    static: np.ndarray | None = None) -> np.ndarray:
        """Indices (ring-major) of the rays of a sensor at ``pose`` that may hit a box other than ``own``
        (``static``: ranges to structures; a ray that meets one before a box's nearest distance cannot)."""
        steps = self.config.azimuth_steps
        if len(boxes) == 0:
            return np.zeros(0, dtype=np.int64)
        dx, dy = boxes.x - pose.x, boxes.y - pose.y
        dist = np.hypot(dx, dy)
        half_diag = 0.5 * np.hypot(boxes.length, boxes.width)
        near = dist - half_diag <= self.config.max_range_m
        if own is not None:
            near[own] = False
        near = np.flatnonzero(near)
        if len(near) == 0:
            return np.zeros(0, dtype=np.int64)
        nearest = np.full(steps, np.inf)  # per azimuth column: the nearest horizontal distance of a box in it
        step = 2 * np.pi / steps
        corners = _footprint(boxes, near)  # (k, 4, 2)
        for j, b in enumerate(near):
            reach = max(float(dist[b] - half_diag[b]), 0.0)
            if dist[b] <= half_diag[b]:  # the sensor stands over this box's footprint: every direction
                np.minimum(nearest, reach, out=nearest)
                continue
            centre = np.arctan2(dy[b], dx[b]) - pose.yaw
            ang = np.arctan2(corners[j, :, 1] - pose.y, corners[j, :, 0] - pose.x) - pose.yaw - centre
            ang = (ang + np.pi) % (2 * np.pi) - np.pi
            lo = int(np.floor((centre + ang.min()) / step)) - 1  # one column of margin on each side
            hi = int(np.ceil((centre + ang.max()) / step)) + 1
            cols = np.arange(lo, hi + 1) % steps
            nearest[cols] = np.minimum(nearest[cols], reach)
        el = self._elevation
        with np.errstate(divide="ignore"):
            ground_reach = np.where(el < 0, pose.z / np.tan(-el), np.inf)  # horizontal distance to the ground
        top = float(boxes.height[near].max())
        rises_above = (el >= 0) & (pose.z > top)  # climbs from above every box: never meets one
        mask = (ground_reach[:, None] >= nearest[None, :]) & ~rises_above[:, None] & np.isfinite(nearest)[None, :]
        if static is not None:  # a structure nearer than the nearest box of the column hides every box in it
            mask &= static.reshape(mask.shape) >= nearest[None, :] - 1e-6
        return np.flatnonzero(mask)

    def scan(self, pose: SensorPose, boxes: Boxes, rng: np.random.Generator, exclude: int | None = None) -> Scan:
        return self.scan_many([pose], boxes, [rng], [exclude])[0]

    @staticmethod
    def _cast_boxes(origins: np.ndarray, dirs: np.ndarray, boxes: Boxes, which: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """First box hit along each ray (distance, box index) among the boxes ``which`` (None: all)."""
        n = len(origins)
        which = np.arange(len(boxes)) if which is None else which
        if len(which) == 0 or n == 0:
            return np.full(n, np.inf), np.full(n, GROUND, dtype=np.int64)
        vertices = boxes.corners()[which].reshape(-1, 3).astype(np.float32)
        triangles = (_BOX_TRIANGLES[None, :, :] + 8 * np.arange(len(which), dtype=np.uint32)[:, None, None])
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(vertices), o3d.core.Tensor(triangles.reshape(-1, 3)))
        rays = o3d.core.Tensor(np.hstack([origins, dirs]).astype(np.float32))
        hit = scene.cast_rays(rays)
        t = hit["t_hit"].numpy().astype(np.float64)
        prim = hit["primitive_ids"].numpy()
        index = np.where(prim == NO_HIT, GROUND, which[np.minimum(prim.astype(np.int64) // 12, len(which) - 1)])
        return t, index

    def _within_range(self, poses: list[SensorPose], boxes: Boxes) -> np.ndarray:
        """Boxes some sensor of ``poses`` can reach (a hit beyond the range is dropped anyway, and a box beyond
        it hides nothing within it): the scene is built from these only."""
        if len(boxes) == 0:
            return np.zeros(0, dtype=np.int64)
        reach = self.config.max_range_m + 0.5 * np.hypot(boxes.length, boxes.width)
        keep = np.zeros(len(boxes), dtype=bool)
        for p in poses:
            keep |= np.hypot(boxes.x - p.x, boxes.y - p.y) <= reach
        return np.flatnonzero(keep)


def _footprint(boxes: Boxes, which: np.ndarray) -> np.ndarray:
    """(k, 4, 2) ground corners of the boxes ``which``."""
    hl, hw = boxes.length[which] / 2, boxes.width[which] / 2
    c, s = np.cos(boxes.yaw[which]), np.sin(boxes.yaw[which])
    sx = np.array([-1.0, 1.0, 1.0, -1.0])
    sy = np.array([-1.0, -1.0, 1.0, 1.0])
    lx, ly = sx[None, :] * hl[:, None], sy[None, :] * hw[:, None]
    x = boxes.x[which][:, None] + c[:, None] * lx - s[:, None] * ly
    y = boxes.y[which][:, None] + s[:, None] * lx + c[:, None] * ly
    return np.stack([x, y], axis=2)


def _ray_box_entry(origin: np.ndarray, dirs: np.ndarray, boxes: Boxes, b: int) -> np.ndarray:
    """Distance along each ray (from ``origin``) to where it enters box ``b`` (slab test); inf if it misses."""
    c, s = np.cos(boxes.yaw[b]), np.sin(boxes.yaw[b])
    ox, oy = origin[0] - boxes.x[b], origin[1] - boxes.y[b]
    o = np.array([c * ox + s * oy, -s * ox + c * oy, origin[2]])
    d = np.stack([c * dirs[:, 0] + s * dirs[:, 1], -s * dirs[:, 0] + c * dirs[:, 1], dirs[:, 2]], axis=1)
    lo = np.array([-boxes.length[b] / 2, -boxes.width[b] / 2, 0.0])
    hi = np.array([boxes.length[b] / 2, boxes.width[b] / 2, boxes.height[b]])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    t1 = np.where(np.isnan(t1), -np.inf, t1)  # parallel to a slab and inside it
    t2 = np.where(np.isnan(t2), np.inf, t2)
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    t_in = np.maximum(np.maximum(near[:, 0], near[:, 1]), near[:, 2])
    t_out = np.minimum(np.minimum(far[:, 0], far[:, 1]), far[:, 2])
    return np.where((t_out >= np.maximum(t_in, 0.0)), np.maximum(t_in, 0.0), np.inf)
