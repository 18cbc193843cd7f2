"""mobility_twin_sim: the CARLA-free simulator (ROS-free). Installs with colcon (ament_python) or pip."""

from setuptools import find_packages, setup

PACKAGE = "mobility_twin_sim"

setup(
    name=PACKAGE,
    version="0.2.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["scenarios/*.yaml", "data/**/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "scipy", "shapely", "pyyaml"],
    zip_safe=False,
    maintainer="mobility_twin developers",
    maintainer_email="mobility-twin@example.org",
    description="CARLA-free simulator of mobility_twin: T-Drive replay, scenarios, ray-cast LiDAR",
    license="Apache-2.0",
)
