"""twin_viz: the twin as rviz markers (``visualization_msgs/MarkerArray`` on /twin/markers, frame ``map``).

Subscribes to the layout (the Layout message on /infrastructure/layout, latched), a twin's tracks (default /twin/global/objects), its
entity twins (/twin/global/state) and edge-server twins (/twin/global/edge_servers), the offloading
decisions and the migrations, the collision warnings and, with a ``network``, the CAVs' guided routes; every ``period_s`` it publishes the markers of the current
:class:`~mobility_twin.viz.scene.TwinScene` (see :mod:`mobility_twin.viz.markers` for the namespaces).
Point clouds are not republished: rviz shows /rsu/<id>/points directly (their frames are
``<rsu_id>/lidar``: see config/mobility_twin.rviz for the static transforms they need).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rclpy.node import Node
from visualization_msgs.msg import MarkerArray

from mobility_twin.ros import topics
from mobility_twin.ros.entry import run_node
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import TWIN_STATE
from mobility_twin.viz.builder import BuilderConfig, SceneBuilder
from mobility_twin.viz.frames import static_transform_commands
from mobility_twin.viz.live import LiveScene, LiveTopics
from mobility_twin.viz.markers import MarkerBuilder, MarkerStyle


@dataclass(frozen=True)
class TwinVizConfig:
    period_s: float = field(0.2, "publish the markers this often (s)")
    max_busy: float = field(0.3, "spend at most this fraction of the time building markers: with many tracks "
                                 "(~60 ms per 100 tracks) the rate drops below 1 / period_s")
    color_by: str = field("source", "track colour: 'source' (RSU only, CAV only, V2X only, fused) or 'age' "
                                    "(age of information, green fresh to red at age_max_s)")
    age_max_s: float = field(1.0, "with color_by 'age': tracks this old or older are red (s)")
    labels: bool = field(True, "draw the track ids over the boxes")
    trail_s: float = field(10.0, "length of the track trails (s of twin time; 0: no trails)")
    arrow_horizon_s: float = field(1.0, "velocity arrows end where the track will be after this long (s)")
    lifetime_s: float = field(2.0, "track markers vanish this long after twin_viz stops updating them (s)")
    migration_fade_s: float = field(5.0, "a migration arrow fades out over this long (s)")
    objects_topic: str = field(topics.GLOBAL_OBJECTS, "TrackedObjectArray to draw (a local twin's works too)")
    state_topic: str = field(topics.GLOBAL_STATE, "TwinStateArray: stale RSUs and sites are drawn grey")
    servers_topic: str = field(topics.GLOBAL_EDGE_SERVERS, "EdgeServerStateArray with the edge servers' twins")
    decisions_topic: str = field(topics.OFFLOAD_DECISIONS, "OffloadDecisionArray: links vehicle -> serving server")
    migrations_topic: str = field(topics.MIGRATIONS, "MigrationEvent: arrows between hosts")
    ground_truth: bool = field(False, "also draw the simulator's ground truth (/sim/ground_truth) as outlines")
    warnings_topic: str = field(topics.COLLISION_WARNINGS, "CollisionWarningArray: conflict points ('' = none)")
    guidance_topic: str = field(topics.GUIDANCE_STATUS, "RouteGuidanceStatus: the CAVs' routes, drawn with a network")
    network: str = field("", "road network the routes are drawn on ('' = no routes; e.g. beijing_cbd)")
    markers_topic: str = field(topics.VIZ_MARKERS, "where the MarkerArray goes")


class TwinVizNode(Node):
    def __init__(self) -> None:
        super().__init__("twin_viz")
        self.config = cfg = declare_config(self, TwinVizConfig)
        self.exit_code: int | None = None
        self.markers = MarkerBuilder(MarkerStyle(
            color_by=cfg.color_by, age_max_s=cfg.age_max_s, arrow_horizon_s=cfg.arrow_horizon_s, labels=cfg.labels,
            trails=cfg.trail_s > 0, lifetime_s=cfg.lifetime_s, migration_fade_s=cfg.migration_fade_s))
        self.builder = SceneBuilder(BuilderConfig(trail_s=max(cfg.trail_s, 0.0),
                                                  migration_memory_s=max(cfg.migration_fade_s, 1.0)))
        names = LiveTopics(objects=cfg.objects_topic, servers=cfg.servers_topic, state=cfg.state_topic,
                           decisions=cfg.decisions_topic, migrations=cfg.migrations_topic,
                           ground_truth=topics.GROUND_TRUTH if cfg.ground_truth else "",
                           warnings=cfg.warnings_topic, guidance=cfg.guidance_topic, network=cfg.network)
        self.live = LiveScene(self, self.builder, names, on_update=self.on_update)
        self.layout_told = None  # the layout whose static transforms were last logged
        self.pub = self.create_publisher(MarkerArray, cfg.markers_topic, TWIN_STATE)
        self.published = 0
        self.next_build = 0.0  # time.monotonic() before which the next build would exceed max_busy
        self.create_timer(cfg.period_s, self.on_timer)
        self.get_logger().info(f"{cfg.objects_topic} and the twin's servers, decisions, migrations -> "
                               f"{cfg.markers_topic} every {cfg.period_s:g} s, colour by {cfg.color_by}")

    def on_update(self) -> None:
        layout = self.builder.layout
        if layout is not None and layout is not self.layout_told:
            self.layout_told = layout
            commands = static_transform_commands(layout)
            if commands:
                self.get_logger().info(
                    "rviz draws the RSU clouds once map -> <rsu>/lidar is known; no /tf_static is published here "
                    "(tf2_msgs is not installed), so on a ROS 2 install run:\n  " + "\n  ".join(commands))

    def on_timer(self) -> None:
        start = time.monotonic()
        if not self.builder.messages or start < self.next_build:
            return
        self.pub.publish(self.markers.build(self.builder.scene()))
        self.published += 1
        cost = time.monotonic() - start
        self.next_build = start + cost / max(self.config.max_busy, 1e-3)
        if cost > self.config.max_busy * self.config.period_s:
            self.get_logger().info(f"markers take {1e3 * cost:.0f} ms: publishing every {cost / self.config.max_busy:.1f} s "
                                   f"(max_busy {self.config.max_busy:g})", throttle_duration_sec=30.0)

    def close(self) -> None:
        if self.published and self.context.ok():
            self.pub.publish(self.markers.clear())  # rviz drops the twin's markers at once


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": TwinVizConfig}


def main() -> int:
    return run_node(TwinVizNode)
