"""The coordinate frames rviz needs for the sensor data, and how to provide them without tf2 here. ROS-free.

The twin's markers are in ``map``. RSU point clouds are in ``<rsu_id>/lidar``, a fixed pose in ``map``
(x, y, LiDAR height, yaw 0 in the simulator). tf2_msgs is not installed in this environment (no wheel),
so the stack publishes no /tf_static; on a full ROS 2 install one static transform per RSU lets rviz draw
the clouds in ``map``. CAV clouds move with the vehicle (map -> base_link from /cav/<id>/odom) and are
not covered.
"""

from __future__ import annotations

from mobility_twin_core import Layout


def rsu_transforms(layout: Layout) -> list[tuple[str, str, float, float, float, float]]:
    """(parent, child, x, y, z, yaw) of the static transform of every RSU LiDAR of ``layout``."""
    return [("map", r.frame_id, float(r.x), float(r.y), float(r.z), float(r.yaw)) for r in layout.rsus]


def static_transform_commands(layout: Layout) -> list[str]:
    """One ``ros2 run tf2_ros static_transform_publisher`` command per RSU of ``layout``."""
    return [f"ros2 run tf2_ros static_transform_publisher --x {x:g} --y {y:g} --z {z:g} --yaw {yaw:g} "
            f"--frame-id {parent} --child-frame-id {child}" for parent, child, x, y, z, yaw in rsu_transforms(layout)]
