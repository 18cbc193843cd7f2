"""mobility_twin_sim: the CARLA-free simulator (ROS-free). Installs with colcon (ament_python) or pip.

Metadata, dependencies and installed files are declared in setup.cfg."""

from setuptools import setup

setup()
