"""Thin rclpy nodes: parameters -> one frozen config -> a ROS-free core object; messages <-> core calls."""
