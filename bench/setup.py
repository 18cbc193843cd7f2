"""mobility_twin_bench: the benchmarks, registered with `mtwin bench` through the entry-point group
``mobility_twin.benchmarks`` (the command line finds them there, so it never imports this package by name)."""

from setuptools import find_packages, setup

PACKAGE = "mobility_twin_bench"
BENCHMARKS = ["sim", "twin", "offloading", "placement", "relations", "allocation", "trackers", "chaos", "guidance", "collision"]

setup(
    name=PACKAGE,
    version="0.2.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "psutil", "matplotlib"],
    zip_safe=False,
    maintainer="mobility_twin developers",
    maintainer_email="mobility-twin@example.org",
    description="Benchmarks of mobility_twin (tables, JSON, PNG)",
    license="Apache-2.0",
    entry_points={"mobility_twin.benchmarks": [f"{name} = {PACKAGE}.{name}" for name in BENCHMARKS]},
)
