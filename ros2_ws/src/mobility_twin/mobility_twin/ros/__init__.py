"""ROS glue shared by the nodes: QoS profiles, message conversions, the node entry-point helper.

Nothing here starts a ROS graph on import; conversions need the message classes only.
"""
