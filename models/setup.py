"""mobility_twin_models: offloading, placement and relation models with their shipped checkpoints (ROS-free)."""

from setuptools import find_packages, setup

PACKAGE = "mobility_twin_models"

setup(
    name=PACKAGE,
    version="0.2.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["checkpoints/*.pt", "checkpoints/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "scipy", "torch", "torch-geometric", "highspy"],
    zip_safe=False,
    maintainer="mobility_twin developers",
    maintainer_email="mobility-twin@example.org",
    description="Learning in mobility_twin: DITEN offloading, DDL twin placement, continual relation GNN",
    license="Apache-2.0",
)
