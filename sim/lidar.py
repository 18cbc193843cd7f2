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

from sim.scenario import LidarSection

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
        self.ring = np.repeat(np.arange(config.channels, dtype=np.uint16), config.azimuth_steps)

    @property
    def rays_per_frame(self) -> int:
        return len(self.directions)

    def scan_many(self, poses: list[SensorPose], boxes: Boxes, rngs: list[np.random.Generator],
                  exclude: list[int | None] | None = None) -> list[Scan]:
        """Cast one frame per pose against the same world. ``exclude[i]``: a box the i-th sensor ignores
        (the vehicle it is mounted on: its own returns are filtered, as real drivers do)."""
        exclude = exclude or [None] * len(poses)
        n = self.rays_per_frame
        if not poses:
            return []
        origins, dirs = [], []
        for pose in poses:
            c, s = np.cos(pose.yaw), np.sin(pose.yaw)
            d = self.directions
            world = np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
            dirs.append(world)
            origins.append(np.broadcast_to([pose.x, pose.y, pose.z], (n, 3)))
        origins = np.concatenate(origins)
        dirs = np.concatenate(dirs)
        t_box, box_index = self._cast_boxes(origins, dirs, boxes)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_ground = np.where(dirs[:, 2] < -1e-9, -origins[:, 2] / dirs[:, 2], np.inf)
        scans = []
        for i in range(len(poses)):
            sl = slice(i * n, (i + 1) * n)
            tb, bi = t_box[sl].copy(), box_index[sl].copy()
            if exclude[i] is not None:
                own = bi == exclude[i]
                tb[own] = np.inf  # self-returns filtered: the ray is lost, not continued
                bi[own] = GROUND
                lost = own
            else:
                lost = np.zeros(n, dtype=bool)
            tg = t_ground[sl]
            hit_box = tb < tg
            t = np.where(hit_box, tb, tg)
            vehicle = np.where(hit_box, bi, GROUND)
            ok = np.isfinite(t) & ~lost & (t >= self.config.min_range_m) & (t <= self.config.max_range_m)
            rng = rngs[i]
            noisy = t + rng.normal(0.0, self.config.range_noise_m, n)
            keep = ok & (rng.random(n) >= self.config.dropout)
            pts = (self.directions[keep] * noisy[keep, None]).astype(np.float32)
            intensity = np.where(vehicle[keep] == GROUND, 0.1, 0.6).astype(np.float32)
            intensity += rng.uniform(0.0, 0.05, int(keep.sum())).astype(np.float32)
            scans.append(Scan(pts, intensity, self.ring[keep], vehicle[keep].astype(np.int32), n))
        return scans

    def scan(self, pose: SensorPose, boxes: Boxes, rng: np.random.Generator, exclude: int | None = None) -> Scan:
        return self.scan_many([pose], boxes, [rng], [exclude])[0]

    @staticmethod
    def _cast_boxes(origins: np.ndarray, dirs: np.ndarray, boxes: Boxes) -> tuple[np.ndarray, np.ndarray]:
        n = len(origins)
        if len(boxes) == 0:
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
