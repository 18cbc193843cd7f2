"""Geodesy for the simulator: WGS84 longitude/latitude <-> a local east-north-up plane in metres.

:class:`LocalENU` projects onto the plane tangent to the WGS84 ellipsoid at an origin (REP 103: x east,
y north). Forward: geodetic -> ECEF -> ENU, keeping east and north. Inverse: the point of the ellipsoid
whose tangent-plane projection is (east, north), found exactly as the intersection of the line through
that plane point along the local up axis with the ellipsoid, then ECEF -> geodetic. The round trip is
exact to floating point (well under a millimetre) anywhere within hundreds of kilometres of the origin;
distances on the plane are within 1e-5 relative of the true ones within 20 km.

:class:`SquareScaler` maps an area into a target square (DITEN scales T-Drive into 5 km x 5 km).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

WGS84_A = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B = WGS84_A * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


def geodetic_to_ecef(lon_deg, lat_deg, h=0.0) -> np.ndarray:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    x = (n + h) * np.cos(lat) * np.cos(lon)
    y = (n + h) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h) * np.sin(lat)
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon deg, lat deg, height m); iterative, converged to < 1e-12 rad."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1.0 - WGS84_E2))
    for _ in range(10):
        n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
        h = p / np.cos(lat) - n
        new = np.arctan2(z, p * (1.0 - WGS84_E2 * n / (n + h)))
        if np.all(np.abs(new - lat) < 1e-13):
            lat = new
            break
        lat = new
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    h = p / np.cos(lat) - n
    return np.degrees(lon), np.degrees(lat), h


@dataclass(frozen=True)
class LocalENU:
    """The tangent plane at (origin_lon, origin_lat) on the WGS84 ellipsoid; x east, y north, metres."""

    origin_lon: float
    origin_lat: float

    def __post_init__(self) -> None:
        if not (-180.0 <= self.origin_lon <= 180.0 and -90.0 < self.origin_lat < 90.0):
            raise ValueError(f"origin ({self.origin_lon}, {self.origin_lat}) is not a longitude/latitude")

    @cached_property
    def _basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lon, lat = np.radians(self.origin_lon), np.radians(self.origin_lat)
        east = np.array([-np.sin(lon), np.cos(lon), 0.0])
        north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
        up = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
        return geodetic_to_ecef(self.origin_lon, self.origin_lat), east, north, up

    def forward(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """(x east, y north) in metres of WGS84 points on the ellipsoid."""
        origin, east, north, _ = self._basis
        d = geodetic_to_ecef(np.asarray(lon, float), np.asarray(lat, float)) - origin
        return d @ east, d @ north

    def inverse(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) in degrees of the ellipsoid points whose tangent-plane projection is (x, y)."""
        origin, east, north, up = self._basis
        x, y = np.asarray(x, float), np.asarray(y, float)
        base = origin + x[..., None] * east + y[..., None] * north
        # ((p + s u)_x^2 + (p + s u)_y^2) / a^2 + (p + s u)_z^2 / b^2 = 1, solved for s near 0
        w = np.array([1.0 / WGS84_A**2, 1.0 / WGS84_A**2, 1.0 / WGS84_B**2])
        qa = np.sum(w * up * up)
        qb = 2.0 * np.sum(w * base * up, axis=-1)
        qc = np.sum(w * base * base, axis=-1) - 1.0
        disc = np.sqrt(qb * qb - 4.0 * qa * qc)
        # the root of smaller magnitude, written to avoid cancellation
        s = np.where(qb >= 0, (-2.0 * qc) / (qb + disc), (-2.0 * qc) / (qb - disc))
        lon, lat, _ = ecef_to_geodetic(base + s[..., None] * up)
        return lon, lat


@dataclass(frozen=True)
class SquareScaler:
    """Uniform scaling of the box [x_min, x_max] x [y_min, y_max] into the square [0, side]^2, centred.

    The larger extent of the box fills the side; aspect is kept (DITEN: "scaled into 5 km x 5 km").
    Speeds scale by the same factor as positions when time is not scaled.
    """

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    side: float

    def __post_init__(self) -> None:
        if not (self.x_max > self.x_min and self.y_max > self.y_min and self.side > 0):
            raise ValueError(f"cannot scale box x {self.x_min}..{self.x_max}, y {self.y_min}..{self.y_max} "
                             f"into a square of side {self.side}")

    @property
    def factor(self) -> float:
        return self.side / max(self.x_max - self.x_min, self.y_max - self.y_min)

    def apply(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        f = self.factor
        x0 = self.x_min - (self.side / f - (self.x_max - self.x_min)) / 2.0
        y0 = self.y_min - (self.side / f - (self.y_max - self.y_min)) / 2.0
        return (np.asarray(x) - x0) * f, (np.asarray(y) - y0) * f
