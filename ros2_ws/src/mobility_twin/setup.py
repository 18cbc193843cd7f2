"""ament_python package of mobility_twin: ROS-free core modules, thin rclpy nodes, the mtwin command line.

Launch files and node parameter files live in this package (launch/, config/; the repository's top-level
launch/ and config/ link here) and are installed into its share folder, so
`$(find-pkg-share mobility_twin)/launch/...` works with `ros2 launch` on a full ROS 2 install and with
`mtwin launch` here.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mobility_twin"

# Node executables (`exec` in launch files): name -> "module under mobility_twin.nodes:function".
NODES = {
    "rsu_perception": "perception:rsu_main",
    "cav_perception": "perception:cav_main",
    "local_twin": "local_twin:main",
    "global_twin": "global_twin:main",
    "replay": "replay:main",
    "launch_probe": "launch_probe:main",
    "selftest_talker": "selftest:talker_main",
    "selftest_listener": "selftest:listener_main",
    "placement": "placement:main",
    "offloading": "offloading:main",
    "resource_allocator": "resource_allocator:main",
    "route_guidance": "route_guidance:main",
    "route_follower": "route_follower:main",
    "collision_warning": "collision_warning:main",
    "relation_learner": "relation_learner:main",
    "twin_viz": "twin_viz:main",
    "recorder": "recorder:main",
    "layout": "layout:main",
}


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.xml"))),
        (f"share/{PACKAGE}/config", sorted(glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="mobility_twin developers",
    maintainer_email="mobility-twin@example.org",
    description="Smart-mobility digital twin stack (ROS 2, Python)",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"mtwin = {PACKAGE}.cli.main:main", *(f"{name} = {PACKAGE}.nodes.{target}" for name, target in NODES.items())],
    },
)
