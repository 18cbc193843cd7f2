"""The packages are layers: each imports only the ones below it, and the ROS-free ones never import ROS."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: package -> its source folder, from the bottom layer up
LAYERS = {
    "mobility_twin_core": REPO / "ros2_ws/src/mobility_twin_core/mobility_twin_core",
    "mobility_twin_sim": REPO / "sim/mobility_twin_sim",
    "mobility_twin_models": REPO / "models/mobility_twin_models",
    "mobility_twin": REPO / "ros2_ws/src/mobility_twin/mobility_twin",
    "mobility_twin_bench": REPO / "bench/mobility_twin_bench",
}
ROS = {"rclpy", "mobility_twin_msgs", "std_msgs", "geometry_msgs", "sensor_msgs", "nav_msgs", "rcl_interfaces"}


def imported_roots(folder: Path) -> dict[str, list[str]]:
    """Top-level module -> the files of ``folder`` that import it (at any depth: lazy imports count)."""
    out: dict[str, list[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                out.setdefault(name.split(".")[0], []).append(str(path.relative_to(REPO)))
    return out


@pytest.mark.parametrize("package", list(LAYERS))
def test_a_package_imports_only_the_layers_below_it(package):
    order = list(LAYERS)
    above = set(order[order.index(package) + 1:])
    roots = imported_roots(LAYERS[package])
    upward = {name: files[:3] for name, files in roots.items() if name in above}
    assert not upward, f"{package} imports a package above it (a cycle): {upward}"


@pytest.mark.parametrize("package", ["mobility_twin_core", "mobility_twin_sim", "mobility_twin_models"])
def test_the_ros_free_packages_do_not_import_ros(package):
    roots = imported_roots(LAYERS[package])
    ros = {name: files[:3] for name, files in roots.items() if name in ROS}
    assert not ros, f"{package} imports ROS: {ros}"
