"""What the rviz config subscribes to, and what the demo stack publishes (topic -> message type, QoS)."""

from __future__ import annotations

from pathlib import Path

import yaml

from mobility_twin.ros import topics

REPO = Path(__file__).resolve().parents[2]
RVIZ_CONFIG = REPO / "config" / "mobility_twin.rviz"

#: rviz_default_plugins display class -> the message type it subscribes to
DISPLAY_TYPES = {
    "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
    "rviz_default_plugins/Marker": "visualization_msgs/msg/Marker",
    "rviz_default_plugins/PointCloud2": "sensor_msgs/msg/PointCloud2",
    "rviz_default_plugins/Odometry": "nav_msgs/msg/Odometry",
}
#: displays that subscribe to nothing
NO_TOPIC = {"rviz_default_plugins/Grid", "rviz_default_plugins/Axes", "rviz_default_plugins/TF"}


def rviz_subscriptions(path: Path = RVIZ_CONFIG) -> list[tuple[str, str, str]]:
    """(topic, message type, reliability) of every enabled display of an rviz2 config, groups included."""
    config = yaml.safe_load(path.read_text())
    found = []

    def walk(displays):
        for d in displays:
            cls = d["Class"]
            if cls == "rviz_common/Group":
                walk(d.get("Displays", []))
                continue
            if cls in NO_TOPIC:
                continue
            if cls not in DISPLAY_TYPES:
                raise ValueError(f"{path}: display {d.get('Name')!r} of class {cls} is not known to this check")
            topic = d["Topic"]
            found.append((topic["Value"], DISPLAY_TYPES[cls], topic.get("Reliability Policy", "Reliable")))

    walk(config["Visualization Manager"]["Displays"])
    return found


def stack_publications(layout) -> dict[str, tuple[str, str]]:
    """Topic -> (message type, reliability) of what the demo stack publishes for ``layout`` (the twin model's)."""
    msgs = "mobility_twin_msgs/msg/"
    out = {
        topics.GROUND_TRUTH: (msgs + "TrackedObjectArray", "Reliable"),
        topics.EDGE_SERVER_REPORTS: (msgs + "EdgeServerStateArray", "Reliable"),
        topics.LAYOUT: (msgs + "Layout", "Reliable"),
        topics.CLOCK: ("rosgraph_msgs/msg/Clock", "Reliable"),
        topics.GLOBAL_OBJECTS: (msgs + "TrackedObjectArray", "Reliable"),
        topics.GLOBAL_STATE: (msgs + "TwinStateArray", "Reliable"),
        topics.GLOBAL_EDGE_SERVERS: (msgs + "EdgeServerStateArray", "Reliable"),
        topics.RELATIONS: (msgs + "RelationGraph", "Reliable"),
        topics.OFFLOAD_DECISIONS: (msgs + "OffloadDecisionArray", "Reliable"),
        topics.MIGRATIONS: (msgs + "MigrationEvent", "Reliable"),
        topics.VIZ_MARKERS: ("visualization_msgs/msg/MarkerArray", "Reliable"),
    }
    for r in layout.rsus:
        out[topics.rsu_points(r.rsu_id)] = ("sensor_msgs/msg/PointCloud2", "Best Effort")
        out[topics.rsu_detections(r.rsu_id)] = (msgs + "DetectedObjectArray", "Reliable")
    for c in layout.cavs:
        out[topics.cav_points(c.cav_id)] = ("sensor_msgs/msg/PointCloud2", "Best Effort")
        out[topics.cav_odometry(c.cav_id)] = ("nav_msgs/msg/Odometry", "Best Effort")
        out[topics.cav_detections(c.cav_id)] = (msgs + "DetectedObjectArray", "Reliable")
    for s in layout.sites:
        out[topics.local_objects(s.site_id)] = (msgs + "TrackedObjectArray", "Reliable")
        out[topics.local_state(s.site_id)] = (msgs + "TwinStateArray", "Reliable")
        out[topics.local_edge_servers(s.site_id)] = (msgs + "EdgeServerStateArray", "Reliable")
    return out
