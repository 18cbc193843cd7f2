"""Vehicles' reports of themselves as detections: V2X cooperative awareness relayed by an edge server, and a
CAV's own state from its odometry. One conversion, used by the simulator node and the offline pipeline."""

from __future__ import annotations

import math

import numpy as np

from mobility_twin.perception.detections import SOURCE_V2X, Detections


def _object_array(items: list) -> np.ndarray:
    # imported here, not with this module: mobility_twin.tracking (with scipy) is not needed to start a node
    from mobility_twin.tracking.trackset import object_array

    return object_array(items)


def load_backend() -> None:
    """Import what the reports need now (a real-time loop calls it before it starts, not at its first report)."""
    _object_array([])


def v2x_detections(server_id: str, server_xy: tuple[float, float], stamp: float, vehicle_ids, x, y, heading, vx, vy,
                   position_sigma_m: float, dims: np.ndarray, object_class) -> Detections:
    """The reports one edge server relays at ``stamp``: source ``<server>/v2x``, each detection the vehicle's
    own (GNSS) position with its covariance, its velocity, and its id as ``self_report``."""
    n = len(vehicle_ids)
    return Detections(
        f"{server_id}/v2x", SOURCE_V2X, float(stamp), (float(server_xy[0]), float(server_xy[1])), 0.0,
        np.column_stack([x, y]).astype(float).reshape(n, 2), np.tile(np.eye(2) * position_sigma_m**2, (n, 1, 1)),
        np.asarray(heading, float).reshape(n), np.asarray(dims, float).reshape(n, 3),
        np.column_stack([vx, vy]).astype(float).reshape(n, 2), np.full(n, 0.99), np.zeros(n, dtype=np.int64),
        np.asarray(object_class, dtype=np.int64).reshape(n), _object_array([str(int(i)) for i in vehicle_ids]),
    )


def self_report(frame: Detections, vehicle_id: str, x: float, y: float, yaw: float, speed: float, sigma_xy: float,
                dims=(4.6, 1.8, 1.5)) -> Detections:
    """``frame`` (a CAV's LiDAR detections) with the CAV's own state appended as a confident self-report."""
    me = Detections(
        frame.source_id, frame.source_type, frame.stamp, frame.sensor_xy, frame.sensor_range, np.array([[x, y]]),
        np.array([np.eye(2) * max(sigma_xy, 0.05) ** 2]), np.array([yaw]), np.array([list(dims)], dtype=float),
        np.array([[speed * math.cos(yaw), speed * math.sin(yaw)]]), np.array([0.99]), np.array([0]),
        np.array([1]), _object_array([vehicle_id]), frame.provenance,
    )
    return Detections.concat([frame, me]) if len(frame) else me


def v2x_report_detections(world, report, stamp: float):
    """A simulated V2X report (``mobility_twin_sim.replay.V2xReport``) of ``world`` as the detections its server
    relays."""
    server = next(e for e in world.edge_servers if e.server_id == report.server_id)
    dims = np.array([world.dimensions(int(i)) for i in report.ids]).reshape(-1, 3)
    return v2x_detections(report.server_id, (server.x, server.y), stamp, report.ids, report.x, report.y, report.heading,
                          report.vx, report.vy, report.position_sigma, dims, [world.class_id(int(i)) for i in report.ids])
