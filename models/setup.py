"""mobility_twin_models: offloading, placement and relation models with their shipped checkpoints (ROS-free).

Metadata, dependencies and installed files are declared in setup.cfg; this file is what colcon (ament_python)
and pip run."""

from setuptools import setup

setup()
