"""mobility_twin: a ROS 2 smart-mobility digital twin stack.

Subpackages hold ROS-free core code (importable without rclpy); ``mobility_twin.nodes`` holds the thin
rclpy nodes and ``mobility_twin.ros`` the message conversions and QoS profiles they share.
"""

__version__ = "0.1.0"
