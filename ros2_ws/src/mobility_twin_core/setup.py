"""mobility_twin_core: the ROS-free twin model every other package of mobility_twin builds on.

Metadata, dependencies and installed files are declared in setup.cfg; this file is what colcon (ament_python)
and pip run."""

from setuptools import setup

setup()
