"""mobility_twin_bench: the benchmarks, registered with `mtwin bench` through the entry-point group
``mobility_twin.benchmarks`` (the command line finds them there, so it never imports this package by name).

Metadata, dependencies and the benchmarks' entry points are declared in setup.cfg; this file is what colcon
(ament_python) and pip run."""

from setuptools import setup

setup()
