"""LiDAR object detection for RSUs and CAVs: ground removal, downsampling, clustering, oriented boxes.

Pipeline for one frame (points in the sensor frame, the sensor's pose in `map`):

1. invalid points (NaN, inf) and points outside [min_range, max_range] are dropped (and counted);
2. points go to the map frame; ground removal keeps points higher than ``ground_height_m`` above the
   ground plane (z = 0 of `map`, or a RANSAC plane fitted with open3d when ``fit_ground_plane``) and
   lower than ``max_height_m``;
3. open3d voxel downsampling, then open3d DBSCAN clustering in bird's-eye view (z flattened, so the
   sparse rings of a distant car still form one cluster);
4. per cluster an oriented box by L-shape fitting (search over headings, closeness criterion), its height
   from the highest point; size filtering; a class from the size; a cluster standing under returns higher
   than ``max_height_m`` (a wall that goes on up: a building) is a static structure, not a vehicle;
5. box completion: a partly seen car (one or two faces) is extended away from the sensor to the prior
   size of its class, so that sensors seeing different faces agree on its centre; where something nearer
   hides the view just beside one end of the cluster (a car behind another), the hidden part is extended
   into that shadow rather than out of it; a far car that one beam alone hits, at the height of a roof,
   may show a line across its roof rather than its face: its box is moved back by the odds of that;
6. a position covariance that grows with range (range noise and angular resolution) and with the part
   of the box that was inferred rather than seen, and a confidence from the number of points and the
   part inferred (a fragment of a partly hidden car does not start a track).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from mobility_twin.perception.detections import Detections
from mobility_twin.perception.visibility import visibility_of
from mobility_twin_core.model import ObjectClass


def _open3d():
    """open3d, imported on first use rather than with this module: it brings its visualisation stack along
    (0.5-0.8 s of a node's start, most of it not needed here)."""
    import open3d

    return open3d


def load_backend() -> None:
    """Import what :meth:`LidarDetector.detect` needs now (a node calls it in a background thread as it starts,
    so that neither its start nor its first frame waits for the import)."""
    _open3d()


@dataclass(frozen=True)
class DetectorConfig:
    min_range_m: float = 1.5
    max_range_m: float = 80.0
    ground_height_m: float = 0.3  # points at most this high above the ground are ground
    max_height_m: float = 4.5
    fit_ground_plane: bool = False  # RANSAC plane (uneven roads) instead of the map's z = 0
    voxel_m: float = 0.2
    cluster_eps_m: float = 0.8
    cluster_min_points: int = 3
    min_points: int = 4  # after downsampling
    min_height_m: float = 0.6
    max_length_m: float = 14.0
    max_width_m: float = 4.0
    min_extent_m: float = 0.3
    prior_length_m: float = 4.6
    prior_width_m: float = 1.8
    tall_prior_length_m: float = 10.0  # between a truck (8.5 m) and a bus (12 m)
    tall_prior_width_m: float = 2.5
    sigma_base_m: float = 0.15
    sigma_per_m: float = 0.004  # grows with range
    angular_resolution_rad: float = 2 * np.pi / 1024
    heading_step_deg: float = 3.0
    vertical_resolution_rad: float = np.radians(42.0 / 31)  # beam spacing, for the ring gaps on roofs
    merge_max_length_m: float = 5.2  # radially stacked pieces are merged only up to this extent (a large SUV's
    # diagonal, 4.8 x 1.9 m: pieces of one car span no more along the line of sight; 6.5 before: two cars queued)
    ring_gap_max_m: float = 3.0  # ... and across at most this gap (twice this on a roof taller than any car)
    car_max_length_m: float = 5.5  # ... or wider, only when together no longer than a long car (a large SUV)
    inferred_scale_m: float = 3.0  # confidence falls by e for every this much box inferred rather than seen
    split_min_length_m: float = 6.5  # a cluster longer than a car ...
    split_gap_m: float = 0.35  # ... with a gap this wide across its length is two vehicles in a queue
    tall_vehicle_m: float = 2.4  # ... unless both sides of the gap are taller than this (a bus, a truck)
    roof_lines: bool = True  # a cluster of one beam may be a line across a roof (False: always a face)
    car_roof_m: tuple[float, float] = (1.55, 0.15)  # ... at the height of cars' roofs: mean, sd (most 1.4-1.9 m)
    structure_share: float = 0.3  # a cluster this much of whose cells have returns above max_height_m is a structure
    person_max_extent_m: float = 0.9  # a cluster no wider or longer than this, ...
    person_height_m: tuple[float, float] = (1.4, 2.1)  # ... this tall, is a person: its box is what is seen
    person_size_m: float = 0.5
    shadow_edge_m: float = 1.0  # returns this close beside a cluster's end (across the line of sight), ...
    shadow_margin_m: float = 0.5  # ... this much nearer than its nearest point ...
    shadow_height_m: float = 0.8  # ... and tall enough to block the rays to a car's body at this height there
    # what the frame saw of the space (perception.visibility: where a vehicle would have been hit, where the
    # view is hidden), sent with the detections so that a tracker tells a vehicle gone from one unseen
    visibility_bins: int = 360  # bearing bins (0: none sent)
    visibility_cell_m: float = 1.0  # depth of a range cell
    visibility_band_m: tuple[float, float] = (0.3, 1.3)  # the height of a vehicle's body: a beam through it there


@dataclass
class DetectorStats:
    """Counts over the detector's life (reported by the node)."""

    frames: int = 0
    points_in: int = 0  # returns received
    points_invalid: int = 0  # NaN or infinite coordinates: dropped, counted
    points_ground: int = 0  # removed as ground
    clusters: int = 0  # Euclidean clusters of what is left
    rejected_size: int = 0  # clusters with too few points or a size no road user has
    rejected_structure: int = 0  # clusters under returns higher than any vehicle (buildings, walls)
    detections: int = 0
    empty_frames: int = 0
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SensorPose2D:
    """A level sensor in `map`: position (m) and yaw (rad)."""

    x: float
    y: float
    z: float
    yaw: float


class LidarDetector:
    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        self.config = config
        self.stats = DetectorStats()
        step = np.radians(config.heading_step_deg)
        self._angles = np.arange(0.0, np.pi / 2, step)
        self._e1 = np.stack([np.cos(self._angles), np.sin(self._angles)], axis=1)  # (A, 2)
        self._e2 = np.stack([-np.sin(self._angles), np.cos(self._angles)], axis=1)

    def detect(self, points: np.ndarray, pose: SensorPose2D, *, source_id: str, source_type: int, stamp: float,
               provenance: tuple[tuple[str, float], ...] = ()) -> Detections:
        """Detections in `map` from (N, 3) points in the sensor frame."""
        cfg = self.config
        st = self.stats
        st.frames += 1
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        st.points_in += len(points)
        finite = np.isfinite(points)
        if not finite.all():  # (one pass over the whole array; the rows only when some value is not finite)
            finite = finite.all(axis=1)
            st.points_invalid += len(points) - int(np.count_nonzero(finite))
            points = points[finite]
        x, y, z = np.ascontiguousarray(points.T)  # columns: contiguous (a third of the cost of strided ones)
        ground2 = x * x + y * y
        rng2 = ground2 + z * z
        inside = (rng2 >= cfg.min_range_m**2) & (rng2 <= cfg.max_range_m**2)
        if np.count_nonzero(inside) < len(points):
            points, ground2 = np.compress(inside, points, axis=0), ground2[inside]  # (rows: 4x faster than [mask])
        empty = Detections.empty(source_id, source_type, stamp, (pose.x, pose.y), cfg.max_range_m, provenance)
        if len(points) == 0:
            st.empty_frames += 1
            return empty
        # the elevation of the returns: the lowest beam's bounds what the sensor sees below it (the blind cone)
        ground_range = np.sqrt(ground2)
        height, sensor_height = self._height_above_ground(points, pose)
        if cfg.visibility_bins > 0:
            seen = visibility_of(points[:, 0], points[:, 1], ground_range, height, pose.yaw, sensor_height,
                                 bins=cfg.visibility_bins, cell_m=cfg.visibility_cell_m, max_range_m=cfg.max_range_m,
                                 ground_height_m=cfg.ground_height_m, band_m=cfg.visibility_band_m)
            empty = replace(empty, visibility=seen)
        else:
            seen = None
        objects = (height > cfg.ground_height_m) & (height < cfg.max_height_m)
        # in the map: only the returns above the ground (most are on it) and those above any vehicle
        tall = _cell_keys(_to_map(np.compress(height >= cfg.max_height_m, points, axis=0), pose)[:, :2], cfg.voxel_m,
                          grow=1)
        st.points_ground += int((~objects).sum())
        obj, obj_h = _to_map(np.compress(objects, points, axis=0), pose), height[objects]
        if len(obj) < cfg.min_points:
            return empty
        lowest_beam = _lowest_elevation(points[:, 2], ground_range, 0.001)
        # keep per voxel the highest point: downsample in BEV, heights looked up by voxel
        voxel = np.floor(obj[:, :2] / cfg.voxel_m).astype(np.int64)
        # one key per voxel, ordered as its (i, j) row (|j| < 2^21 voxels: +-400 km at 0.2 m)
        _, first, inverse = np.unique(voxel[:, 0] * 4_194_304 + voxel[:, 1], return_index=True, return_inverse=True)
        top = np.full(len(first), -np.inf)
        np.maximum.at(top, inverse, obj_h)
        elevation = np.arctan2(points[objects, 2], ground_range[objects])
        low, high = np.full(len(first), np.inf), np.full(len(first), -np.inf)  # per cell, its returns' beams
        np.minimum.at(low, inverse, elevation)
        np.maximum.at(high, inverse, elevation)
        cut = low <= lowest_beam + 0.5 * cfg.vertical_resolution_rad  # seen by the lowest beam: may go on below it
        xy = obj[first, :2]
        o3d = _open3d()
        bev = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.column_stack([xy, np.zeros(len(xy))])))
        labels = np.asarray(bev.cluster_dbscan(cfg.cluster_eps_m, cfg.cluster_min_points, print_progress=False))
        labels = self._merge_ring_pieces(xy, top, labels, pose)
        found = self._boxes(xy, top, labels, pose, source_id, source_type, stamp, provenance, tall, cut, (low, high))
        return empty if found is None else replace(found, visibility=seen)

    def _merge_ring_pieces(self, xy: np.ndarray, top: np.ndarray, labels: np.ndarray,
                           pose: SensorPose2D) -> np.ndarray:
        """Join clusters that are pieces of one roof cut apart by the gaps between LiDAR rings.

        Seen from above, consecutive rings hit a roof d^2 * dtheta / h apart in range (about 1 m at 17 m
        for a sensor 4.5 m above the roof): more than the clustering radius. Two clusters are joined when
        they overlap in azimuth, their range gap is within the expected ring spacing, and together they
        are no longer than a vehicle. The spacing is computed for the pieces' own roof height (a bus's roof
        is closer to the sensor than a car's, its ring gaps wider), and pieces both taller than any car may
        join up to a bus's length. A gap wider than ``ring_gap_max_m`` is crossed only when the rings are that
        far apart and the pieces together are no longer than a long car (``car_max_length_m``): a sensor at roof
        height (a CAV's) sees a car ahead as its rear and, metres behind, the far end of its roof, never the roof
        between; an RSU sees a car driving away from it, far off, as its rear and one ring across its roof.

        Pieces join only while their group together stays within those lengths: no chain of pairs. In a queue
        toward an RSU the rings cross each roof as far apart as the cars are (SUMO city: two cars 7 m apart,
        two rings on each roof, 2.3-3.5 m gaps): a chain took the queue as one cluster, which the split then
        cut at its widest gap, inside a car.
        """
        cfg = self.config
        n = int(labels.max()) + 1 if len(labels) else 0
        if n < 2:
            return labels
        rel = xy - np.array([pose.x, pose.y])
        rho = np.hypot(rel[:, 0], rel[:, 1])
        phi = np.arctan2(rel[:, 1], rel[:, 0])
        mean_phi = np.arctan2(np.bincount(labels[labels >= 0], np.sin(phi[labels >= 0]), n),
                              np.bincount(labels[labels >= 0], np.cos(phi[labels >= 0]), n))
        ok = labels >= 0
        dphi = np.angle(np.exp(1j * (phi[ok] - mean_phi[labels[ok]])))
        lab = labels[ok]
        a_lo = np.full(n, np.inf)
        a_hi = np.full(n, -np.inf)
        r_lo = np.full(n, np.inf)
        r_hi = np.full(n, -np.inf)
        np.minimum.at(a_lo, lab, dphi)
        np.maximum.at(a_hi, lab, dphi)
        np.minimum.at(r_lo, lab, rho[ok])
        np.maximum.at(r_hi, lab, rho[ok])
        roof = np.full(n, -np.inf)
        np.maximum.at(roof, lab, top[ok])
        parent = np.arange(n)
        g_lo, g_hi = r_lo.copy(), r_hi.copy()  # each group's extent in range (at its root)

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        order = np.argsort(r_lo)
        for ii in range(n):
            i = order[ii]
            for jj in range(ii + 1, n):
                j = order[jj]
                gap = r_lo[j] - r_hi[i]
                if gap > 2 * cfg.ring_gap_max_m:
                    break
                tall = min(roof[i], roof[j]) >= cfg.tall_vehicle_m
                height = max(pose.z - min(roof[i], roof[j]), 0.3)
                rings = max(cfg.cluster_eps_m, 1.3 * r_lo[j] ** 2 * cfg.vertical_resolution_rad / height)
                extent = max(r_hi[i], r_hi[j]) - min(r_lo[i], r_lo[j])
                # beyond ring_gap_max_m only when the rings are that far apart and the pieces together are no
                # longer than one long car (a sensor at roof height sees a car's rear and the far end of its roof)
                if gap > min(cfg.ring_gap_max_m * (2 if tall else 1), rings) and (
                        gap > rings or extent > cfg.car_max_length_m):
                    continue
                # azimuths relative to piece i's mean bearing (pieces straddling the bearing of +-pi stay whole)
                turn = _wrap(mean_phi[j] - mean_phi[i])
                lo_j, hi_j = a_lo[j] + turn, a_hi[j] + turn
                overlap = min(a_hi[i], hi_j) - max(a_lo[i], lo_j)
                width = min(a_hi[i] - a_lo[i], hi_j - lo_j)
                longest = cfg.max_length_m if tall else cfg.merge_max_length_m
                ri, rj = root(i), root(j)
                together = max(g_hi[ri], g_hi[rj]) - min(g_lo[ri], g_lo[rj])
                if together > longest or overlap <= 0:  # (together spans at least the pair's extent)
                    continue
                # side by side in azimuth for half the narrower piece, or less when together they are no larger
                # than one car seen at an angle (its rear and its roof, shifted across the line of sight)
                across = (max(a_hi[i], hi_j) - min(a_lo[i], lo_j)) * 0.5 * (r_lo[i] + r_hi[j])
                if overlap < 0.5 * width and math.hypot(extent, across) > math.hypot(cfg.car_max_length_m,
                                                                                    cfg.prior_width_m):
                    continue
                if ri != rj:
                    parent[rj] = ri
                    g_lo[ri], g_hi[ri] = min(g_lo[ri], g_lo[rj]), max(g_hi[ri], g_hi[rj])
        roots = np.array([root(i) for i in range(n)])
        merged = labels.copy()
        merged[ok] = roots[labels[ok]]
        _, merged[ok] = np.unique(merged[ok], return_inverse=True)
        return merged

    def _height_above_ground(self, points: np.ndarray, pose: SensorPose2D) -> tuple[np.ndarray, float]:
        """The height of each return (sensor frame) and of the sensor above the map's ground (z = 0), or above
        the ground plane fitted to the cloud (``fit_ground_plane``)."""
        if not self.config.fit_ground_plane or len(points) < 50:
            return pose.z + points[:, 2], pose.z
        world = _to_map(points, pose)
        o3d = _open3d()
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(world))
        (a, b, c, d), _ = pcd.segment_plane(distance_threshold=0.15, ransac_n=3, num_iterations=60)
        if abs(c) < 0.9:  # not a ground-like plane: keep the map's ground
            return world[:, 2], pose.z
        sign, normal, norm = (1.0 if c > 0 else -1.0), np.array([a, b, c]), np.linalg.norm([a, b, c])
        return sign * (world @ normal + d) / norm, sign * float(np.array([pose.x, pose.y, pose.z]) @ normal + d) / norm

    def _boxes(self, xy, top, labels, pose, source_id, source_type, stamp, provenance,
               tall: np.ndarray | None = None, cut: np.ndarray | None = None,
               beams: tuple[np.ndarray, np.ndarray] | None = None) -> Detections | None:
        """Boxes of the clusters; ``tall``: sorted keys of the cells (and their neighbours) with returns above
        ``max_height_m``: a cluster mostly under them is part of something taller than any vehicle; ``cut``:
        per cell, whether the sensor's lowest beam hit it (a vehicle there may go on into the blind cone);
        ``beams``: per cell, the lowest and highest elevation of its returns (rad): a cluster within one beam
        may be a line across a roof rather than a face (:meth:`_roof_share`)."""
        cfg = self.config
        st = self.stats
        n_clusters = int(labels.max()) + 1 if len(labels) else 0
        st.clusters += n_clusters
        if n_clusters == 0:
            return None
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        starts = np.searchsorted(sorted_labels, np.arange(n_clusters))
        ends = np.searchsorted(sorted_labels, np.arange(n_clusters), side="right")
        out = {k: [] for k in ("xy", "cov", "yaw", "dims", "conf", "n", "cls")}
        sensor = np.array([pose.x, pose.y])
        rel = xy - sensor
        bearing, ground = np.arctan2(rel[:, 1], rel[:, 0]), np.hypot(rel[:, 0], rel[:, 1])
        pieces = []
        for k in range(n_clusters):
            pieces += self._split_queued(xy, top, order[starts[k]:ends[k]])
        for idx in pieces:
            if len(idx) < cfg.min_points:
                st.rejected_size += 1
                continue
            pts = xy[idx]
            h = float(top[idx].max())
            centre, yaw, extent = self._l_shape(pts)
            length, width = extent
            if length < width:
                length, width, yaw = width, length, yaw + np.pi / 2
            if (h < cfg.min_height_m or length > cfg.max_length_m or width > cfg.max_width_m
                    or length < cfg.min_extent_m):
                st.rejected_size += 1
                continue
            if tall is not None and len(tall) and \
                    np.isin(_cell_keys(pts, cfg.voxel_m), tall).mean() >= cfg.structure_share:
                st.rejected_structure += 1
                continue
            cut_off = cut is not None and bool(cut[idx].any())
            person = (length <= cfg.person_max_extent_m and cfg.person_height_m[0] <= h <= cfg.person_height_m[1]
                      and not cut_off)  # a small piece at the blind cone's edge is a vehicle's end, not a person
            ambiguity = 0.0  # variance (m^2) along the line of sight from two readings of the cluster
            if person:
                full_len, full_wid, inferred = max(length, cfg.person_size_m), max(width, cfg.person_size_m), 0.0
            else:
                seen = centre
                centre, full_len, full_wid, inferred, yaw = self._complete(
                    centre, yaw, length, width, sensor, tall=h >= cfg.tall_vehicle_m,
                    toward=cut_off, shadow=0 if cut_off else self._shadow(bearing, ground, top, pose.z, idx))
                if cfg.roof_lines and beams is not None and not cut_off and h < cfg.tall_vehicle_m and \
                        beams[1][idx].max() - beams[0][idx].min() < 0.5 * cfg.vertical_resolution_rad:
                    los = (centre - sensor) / max(float(np.hypot(*(centre - sensor))), 1e-6)
                    w = self._roof_share(h, float(beams[0][idx].min()), los, yaw, full_len, full_wid)
                    # a roof line's box is the face's without its growth away from the sensor (the line lies
                    # over the roof, where the roof is); its centre is the mean of the two, each by its odds
                    grown = float((centre - seen) @ los)
                    centre = centre - w * grown * los
                    ambiguity = w * (1.0 - w) * grown * grown  # and the spread between them, as variance
            los = centre - sensor
            rng = float(np.hypot(*los))
            sigma_r = cfg.sigma_base_m + cfg.sigma_per_m * rng + 0.5 * inferred
            if ambiguity > 0.0:
                sigma_r = math.sqrt(sigma_r * sigma_r + ambiguity)
            sigma_t = cfg.sigma_base_m + rng * cfg.angular_resolution_rad + 0.25 * inferred
            phi = np.arctan2(los[1], los[0])
            rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
            out["cov"].append(rot @ np.diag([sigma_r**2, sigma_t**2]) @ rot.T)
            out["xy"].append(centre)
            out["yaw"].append(_wrap(yaw))
            out["dims"].append((full_len, full_wid, h))
            # few points, or most of the box inferred rather than seen: a fragment, not to start a track on
            out["conf"].append(float((1.0 - np.exp(-len(idx) / 8.0)) * np.exp(-inferred / cfg.inferred_scale_m)))
            out["n"].append(len(idx))
            out["cls"].append(ObjectClass.PEDESTRIAN if person else ObjectClass.BUS if full_len > 9.0
                              else ObjectClass.TRUCK if full_len > 6.0 else ObjectClass.CAR)
        m = len(out["xy"])
        st.detections += m
        if m == 0:
            return None
        return Detections(
            source_id, source_type, stamp, (pose.x, pose.y), cfg.max_range_m, np.array(out["xy"]),
            np.array(out["cov"]), np.array(out["yaw"]), np.array(out["dims"], dtype=float),
            np.full((m, 2), np.nan), np.array(out["conf"]), np.array(out["n"], dtype=np.int64),
            np.array(out["cls"], dtype=np.int64), np.full(m, "", dtype=object), provenance,
        )

    def _roof_share(self, top: float, elevation: float, los: np.ndarray, yaw: float, length: float,
                    width: float) -> float:
        """The probability that a cluster of one beam is a line across a car's roof rather than its face
        (``los``: the unit line of sight; ``yaw``, ``length``, ``width``: the completed box).

        A beam descending at ``elevation`` meets a car either on its near face, at any height from the ground
        to the roof, or, passing just over that face, on its roof, at the roof's height, over the drop of the
        beam along the roof (the car's extent along the line of sight times the beam's slope). The two are
        told apart by the height seen, ``top``: a face is seen at a height below the car's roof (any car as
        tall as that), a roof at a height a car's roof has (``car_roof_m``: a normal prior over the cars on
        the road). Grown as a face away from the sensor, a roof line puts the box half a car too far (found
        on the sweep's s07_airport: a car parked 75 m from an RSU, 5 returns along its roof, reported 2.3 m
        beyond it in every frame); a face low on a car is not moved."""
        mean, sd = self.config.car_roof_m
        c, s = math.cos(yaw), math.sin(yaw)
        along = abs(c * los[0] + s * los[1]) * length + abs(s * los[0] - c * los[1]) * width  # ``los``: a unit
        drop = along * abs(math.tan(elevation))
        z = (top - mean) / sd
        roof = drop * math.exp(-0.5 * z * z) / (sd * math.sqrt(2.0 * math.pi))  # roofs at this height, this often
        face = 0.5 * math.erfc(z / math.sqrt(2.0))  # the share of cars at least this tall
        return roof / (roof + face) if roof + face > 0.0 else 0.0

    def _split_queued(self, xy: np.ndarray, top: np.ndarray, idx: np.ndarray) -> list[np.ndarray]:
        """A cluster longer than a car whose points leave a gap of ``split_gap_m`` across its length is the
        vehicles of a queue, bumper to bumper (closer than the clustering radius): split at the widest gap,
        and again in each part. A bus's side is continuous: it stays whole; so does a bus or truck seen end-on,
        whose roof the rings cross with gaps: both sides of the gap taller than any car are one vehicle."""
        cfg = self.config
        if len(idx) < 2 * cfg.min_points:
            return [idx]
        _, yaw, (length, width) = self._l_shape(xy[idx])
        if max(length, width) <= cfg.split_min_length_m:
            return [idx]
        axis = yaw if length >= width else yaw + np.pi / 2
        along = xy[idx] @ np.array([np.cos(axis), np.sin(axis)])
        order = np.argsort(along)
        gaps = np.diff(along[order])
        cut = int(np.argmax(gaps))
        if gaps[cut] < cfg.split_gap_m or min(cut + 1, len(idx) - cut - 1) < cfg.min_points:
            return [idx]
        first, second = idx[order[: cut + 1]], idx[order[cut + 1:]]
        if min(top[first].max(), top[second].max()) >= cfg.tall_vehicle_m:
            return [idx]
        self.stats.counters["queue_splits"] = self.stats.counters.get("queue_splits", 0) + 1
        return self._split_queued(xy, top, first) + self._split_queued(xy, top, second)

    def _l_shape(self, pts: np.ndarray) -> tuple[np.ndarray, float, tuple[float, float]]:
        """Rectangle fitting by the closeness criterion (Zhang et al., 2017) over headings in [0, 90)."""
        p1 = pts @ self._e1.T  # (k, A)
        p2 = pts @ self._e2.T
        lo1, hi1, lo2, hi2 = p1.min(0), p1.max(0), p2.min(0), p2.max(0)
        d1 = np.minimum(p1 - lo1, hi1 - p1)
        d2 = np.minimum(p2 - lo2, hi2 - p2)
        d = np.maximum(np.minimum(d1, d2), 0.05)
        a = int(np.argmax((1.0 / d).sum(0)))
        c1, c2 = (lo1[a] + hi1[a]) / 2, (lo2[a] + hi2[a]) / 2
        centre = c1 * self._e1[a] + c2 * self._e2[a]
        return centre, float(self._angles[a]), (float(hi1[a] - lo1[a]), float(hi2[a] - lo2[a]))

    def _shadow(self, bearing: np.ndarray, ground: np.ndarray, top: np.ndarray, sensor_z: float,
                idx: np.ndarray) -> int:
        """Which end of the cluster ``idx`` (across the line of sight) something nearer hides: -1 the end of
        lower bearing, +1 the higher one, 0 neither or both. ``bearing``, ``ground``, ``top``: every point's
        bearing and ground range from the sensor and its height above the ground. A nearer return hides the
        view where it stands above the ray from the sensor (``sensor_z`` up) to a car's body
        (``shadow_height_m``) at the cluster's range, or to the cluster's lowest part where it was seen lower (a
        far car's side that one low beam traced, which a car parked beside it hid at 0.9 m): a low kerb or a
        person near the pole does not."""
        cfg = self.config
        mid = float(np.arctan2(np.sin(bearing[idx]).mean(), np.cos(bearing[idx]).mean()))
        offset = (bearing - mid + np.pi) % (2 * np.pi) - np.pi
        lo, hi = offset[idx].min(), offset[idx].max()
        near = float(ground[idx].min())
        edge = cfg.shadow_edge_m / max(near, 1.0)
        body = min(cfg.shadow_height_m, float(top[idx].min()))  # (or lower, where the cluster was seen lower)
        ray = sensor_z - (sensor_z - body) * ground / max(near, 1.0)
        nearer = (ground < near - cfg.shadow_margin_m) & (top >= ray)
        low = bool(np.any(nearer & (offset < lo) & (offset >= lo - edge)))
        high = bool(np.any(nearer & (offset > hi) & (offset <= hi + edge)))
        return int(high) - int(low)

    def _complete(self, centre, yaw, length, width, sensor, tall=False,
                  toward=False, shadow=0) -> tuple[np.ndarray, float, float, float, float]:
        """Extend a partly seen box away from the sensor to the prior size (a bus's or truck's when it is taller
        than any car); returns the inferred part (m).

        ``length`` >= ``width`` along ``yaw``. When the long observed side is longer than a car is wide, it is
        the car's side: the length axis is ``yaw``. Otherwise only a short face was seen (the car's front or
        back, or a corner): the hidden length runs away from the sensor, along the axis closer to the line
        of sight. ``toward``: the cluster was seen by the sensor's lowest beam, so its near side is cut off by the
        blind cone under the sensor (a vehicle beside the pole): the hidden part is toward the sensor instead.
        ``shadow`` (:meth:`_shadow`): the end of the cluster whose view something nearer hides, -1 the lower
        bearing, +1 the higher; an axis well across the line of sight grows into that shadow. A short piece
        across the line of sight that ends in a shadow may be a short face or a part of the side whose rest
        is hidden: the centre is the mean of the two boxes (the box reported is the short face's).
        """
        cfg = self.config
        axis_a = np.array([np.cos(yaw), np.sin(yaw)])
        axis_b = np.array([-np.sin(yaw), np.cos(yaw)])
        los = (centre - sensor) / max(float(np.hypot(*(centre - sensor))), 1e-6)
        side_seen = length > (cfg.tall_prior_width_m if tall else cfg.prior_width_m) + 0.5
        if side_seen or abs(los @ axis_a) >= abs(los @ axis_b):
            return self._grow(centre, axis_a, axis_b, length, width, los, tall, toward, shadow)
        face = self._grow(centre, axis_b, axis_a, width, length, los, tall, toward, shadow)
        if not shadow or toward:
            return face
        side = self._grow(centre, axis_a, axis_b, length, width, los, tall, toward, shadow)
        return (face[0] + side[0]) / 2, face[1], face[2], max(face[3], side[3]), face[4]

    def _grow(self, centre, long_axis, short_axis, seen_long, seen_short, los, tall, toward,
              shadow) -> tuple[np.ndarray, float, float, float, float]:
        """One box of :meth:`_complete`: the seen part grown to the prior size along the two axes given."""
        cfg = self.config
        full_long = max(seen_long, cfg.tall_prior_length_m if tall else cfg.prior_length_m)
        full_short = max(seen_short, cfg.tall_prior_width_m if tall else cfg.prior_width_m)
        grow_l, grow_s = full_long - seen_long, full_short - seen_short
        sign_l = (np.sign(los @ long_axis) or 1.0) * (-1.0 if toward else 1.0)
        sign_s = (np.sign(los @ short_axis) or 1.0) * (-1.0 if toward else 1.0)
        if shadow and not toward:
            across = np.array([-los[1], los[0]])  # the direction of growing bearing
            if abs(long_axis @ across) > 0.5:
                sign_l = shadow * np.sign(long_axis @ across)
            if abs(short_axis @ across) > 0.5:
                sign_s = shadow * np.sign(short_axis @ across)
        centre = centre + sign_l * grow_l / 2 * long_axis + sign_s * grow_s / 2 * short_axis
        box_yaw = float(np.arctan2(long_axis[1], long_axis[0]))
        return centre, full_long, full_short, float(np.hypot(grow_l, grow_s)), box_yaw


def _to_map(points: np.ndarray, pose: SensorPose2D) -> np.ndarray:
    """Points (N, 3) of the sensor frame in the map (the sensor at ``pose``, level)."""
    c, s = np.cos(pose.yaw), np.sin(pose.yaw)
    world = np.empty_like(points)
    world[:, 0] = pose.x + c * points[:, 0] - s * points[:, 1]
    world[:, 1] = pose.y + s * points[:, 0] + c * points[:, 1]
    world[:, 2] = pose.z + points[:, 2]
    return world


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def _lowest_elevation(z: np.ndarray, ground_range: np.ndarray, q: float) -> float:
    """``np.quantile(np.arctan2(z, ground_range), q)``, the arctangent taken of the two returns that the
    quantile interpolates only (selected by z / range, which orders them as their elevation does)."""
    n = len(z)
    pos = q * (n - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = z / ground_range
    slope[~np.isfinite(slope)] = np.copysign(np.inf, z[~np.isfinite(slope)])
    k = np.argpartition(slope, [lo, hi])[[lo, hi]]
    a = np.arctan2(z[k], ground_range[k])
    return float(a[0] + (pos - lo) * (a[1] - a[0]))


def _cell_keys(xy: np.ndarray, cell_m: float, grow: int = 0) -> np.ndarray:
    """Sorted unique integer keys of the BEV cells of ``xy`` (N, 2), with their neighbours ``grow`` cells around."""
    if not len(xy):
        return np.zeros(0, dtype=np.int64)
    ij = np.floor(np.asarray(xy, dtype=np.float64) / cell_m).astype(np.int64)
    if grow:
        steps = np.arange(-grow, grow + 1)
        shifts = np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2)
        ij = (ij[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    return np.unique(ij[:, 0] * 4_194_304 + ij[:, 1])  # cells of 0.2 m: unique within +-400 km
