"""QoS profiles named for what they carry."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)


def keep_last(depth: int, *, reliable: bool = True, latched: bool = False) -> QoSProfile:
    """A profile keeping the last ``depth`` messages: reliable or best effort; volatile, or transient local
    (``latched``: late joiners get the last ``depth`` messages)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


#: High-rate sensor streams (point clouds, odometry): newest data wins, losing a frame is fine.
SENSOR_STREAM = keep_last(5, reliable=False)

#: What a sensor-processing node subscribes with (a perception node's clouds): the newest frame only. A cloud
#: not yet taken when the next arrives is replaced, so a node that falls behind (a busy host) goes on with
#: the present instead of working through a queue of the past (with five queued, perception ran 250 ms
#: behind on a loaded 2-core machine and stayed there). The node counts the frames it never saw.
NEWEST_FRAME = keep_last(1, reliable=False)

#: Twin state (detections, tracks, server twins, relations): every message matters, short history.
TWIN_STATE = keep_last(10)

#: Discrete events (offloading decisions, migrations): reliable with a deep queue so bursts are not lost.
EVENTS = keep_last(100)

#: Scenario and map data published once: late joiners still get the last message.
LATCHED = keep_last(1, latched=True)

#: /clock under replay: reliable, shallow (as rosbag2 and gazebo publish it).
CLOCK = keep_last(1)
