"""Synthetic rotating LiDAR: ray casting against the ground and the oriented boxes of all vehicles.

The beam pattern is ``channels`` elevations evenly spread over the vertical field of view times
``azimuth_steps`` azimuths over 360 degrees (a 32 x 1024 sensor casts 32,768 rays per frame). Rays are
cast with open3d's ray-casting scene (Embree) against one triangle mesh holding every vehicle box; the
ground is the plane z = 0 of the map frame, intersected analytically. Occlusion falls out of the ray
casting: the first hit wins. Range noise (Gaussian) and dropout are drawn from a generator seeded by
(scenario seed, sensor index, frame index), so the same seed gives identical clouds whatever order
sensors are simulated in.

Points are returned in the sensor frame (x forward, y left, z up, REP 103), with intensity and ring,
plus which vehicle each point hit (for evaluation only; a real sensor does not know it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from mobility_twin_sim.scenario import LidarSection

NO_HIT = np.uint32(0xFFFFFFFF)
GROUND = -1  # hit_vehicle value of ground points
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
    intensity: np.ndarray
    ring: np.ndarray
    hit_vehicle: np.ndarray
    rays: int

    def __len__(self) -> int:
        return len(self.points)


class Lidar:
    """A beam pattern; :meth:`scan_many` casts several sensors' frames in one call."""

    def __init__(self, config: LidarSection) -> None:
        self.config = config
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
        """
        exclude = exclude or [None] * len(poses)
        n = self.rays_per_frame
        if not poses:
            return []
        rays = [self._candidates(pose, boxes, own) if cull else np.arange(n) for pose, own in zip(poses, exclude, strict=True)]
        origins = np.concatenate([np.broadcast_to([p.x, p.y, p.z], (len(r), 3)) for p, r in zip(poses, rays, strict=True)])
        dirs = np.concatenate([self._world_directions(p, r) for p, r in zip(poses, rays, strict=True)])
        t_cast, box_cast = self._cast_boxes(origins, dirs, boxes)
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
                tb[lost] = np.inf  # self-returns filtered: the ray is lost, not continued
                bi[lost] = GROUND
            tg = pose.z * self._ground_per_metre  # the ground plane, analytically
            hit_box = tb < tg
            t = np.where(hit_box, tb, tg)
            ok = np.isfinite(t) & ~lost & (t >= self.config.min_range_m) & (t <= self.config.max_range_m)
            index = np.flatnonzero(ok)
            rng = rngs[i]
            noise = rng.standard_normal(len(index), dtype=np.float32) * np.float32(self.config.range_noise_m)
            keep = rng.random(len(index), dtype=np.float32) >= self.config.dropout
            index, noisy = index[keep], t[index[keep]].astype(np.float32) + noise[keep]
            pts = self._directions32[index] * noisy[:, None]
            vehicle = np.where(hit_box[index], bi[index], GROUND)
            intensity = np.where(vehicle == GROUND, 0.1, 0.6).astype(np.float32)
            intensity += np.float32(0.05) * rng.random(len(index), dtype=np.float32)
            scans.append(Scan(pts, intensity, self.ring[index], vehicle.astype(np.int32), n))
        return scans

    def _world_directions(self, pose: SensorPose, rays) -> np.ndarray:
        c, s = np.cos(pose.yaw), np.sin(pose.yaw)
        d = self.directions[rays]
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

    def _candidates(self, pose: SensorPose, boxes: Boxes, own: int | None) -> np.ndarray:
        """Indices (ring-major) of the rays of a sensor at ``pose`` that may hit a box other than ``own``."""
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
        return np.flatnonzero(mask)

    def scan(self, pose: SensorPose, boxes: Boxes, rng: np.random.Generator, exclude: int | None = None) -> Scan:
        return self.scan_many([pose], boxes, [rng], [exclude])[0]

    @staticmethod
    def _cast_boxes(origins: np.ndarray, dirs: np.ndarray, boxes: Boxes) -> tuple[np.ndarray, np.ndarray]:
        n = len(origins)
        if len(boxes) == 0 or n == 0:
            return np.full(n, np.inf), np.full(n, GROUND, dtype=np.int64)
        vertices = boxes.corners().reshape(-1, 3).astype(np.float32)
        triangles = (_BOX_TRIANGLES[None, :, :] + 8 * np.arange(len(boxes), dtype=np.uint32)[:, None, None])
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(vertices), o3d.core.Tensor(triangles.reshape(-1, 3)))
        rays = o3d.core.Tensor(np.hstack([origins, dirs]).astype(np.float32))
        hit = scene.cast_rays(rays)
        t = hit["t_hit"].numpy().astype(np.float64)
        prim = hit["primitive_ids"].numpy()
        index = np.where(prim == NO_HIT, GROUND, prim.astype(np.int64) // 12)
        return t, index


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
