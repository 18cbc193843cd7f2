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

#: Twin state (detections, tracks, server twins, relations): every message matters, short history.
TWIN_STATE = keep_last(10)

#: Discrete events (offloading decisions, migrations): reliable with a deep queue so bursts are not lost.
EVENTS = keep_last(100)

#: Scenario and map data published once: late joiners still get the last message.
LATCHED = keep_last(1, latched=True)

#: /clock under replay: reliable, shallow (as rosbag2 and gazebo publish it).
CLOCK = keep_last(1)
