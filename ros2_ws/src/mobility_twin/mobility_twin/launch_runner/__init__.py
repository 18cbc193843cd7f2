"""Runs ROS 2 XML launch files where the `launch` library is not installed (the PyPI wheels lack it).

The files it reads are ordinary launch_xml files: on a full ROS 2 install `ros2 launch` runs them as is.
"""

from .errors import LaunchError
from .runner import LaunchRunner, RunOptions, node_command
from .xml_loader import (
    ArgumentDeclaration,
    LaunchPlan,
    NodeAction,
    ParamFile,
    ParamValue,
    declared_arguments,
    load_launch_file,
)

__all__ = [
    "ArgumentDeclaration",
    "LaunchError",
    "LaunchPlan",
    "LaunchRunner",
    "NodeAction",
    "ParamFile",
    "ParamValue",
    "RunOptions",
    "declared_arguments",
    "load_launch_file",
    "node_command",
]
