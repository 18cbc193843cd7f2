"""mobility_twin_core: the ROS-free twin model every other package of mobility_twin builds on."""

from setuptools import find_packages, setup

PACKAGE = "mobility_twin_core"

setup(
    name=PACKAGE,
    version="0.2.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "scipy", "shapely", "pyyaml"],
    zip_safe=False,
    maintainer="mobility_twin developers",
    maintainer_email="mobility-twin@example.org",
    description="ROS-free twin model of mobility_twin",
    license="Apache-2.0",
)
