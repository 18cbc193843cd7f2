"""The layout a node took from /infrastructure/layout survives its restart: the restarted node starts from its
cached copy before any layout message is available, the topic's layout replaces it when it differs, and a
cached copy that is too old or of another deployment is not used, with a line saying why."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.ros_helpers import Collector, stop

pytestmark = pytest.mark.ros

SQUARE = [[-200.0, -200.0], [200.0, -200.0], [200.0, 200.0], [-200.0, 200.0]]
LAYOUT = {"name": "cbd_pilot", "area": SQUARE, "sites": [{"id": "site_c", "polygon": SQUARE}],
          "rsus": [{"id": "rsu_c", "x": 0.0, "y": 0.0, "z": 6.0, "site": "site_c"}],
          "edge_servers": [{"id": "edge_c", "x": 0.0, "y": 0.0, "coverage_radius_m": 300.0, "cpu_hz": 3e9,
                            "site": "site_c"}]}
OBJECTS = "/twin/local/site_c/objects"


def _local_twin(log, *params: str) -> subprocess.Popen:
    from mobility_twin.launch_runner.ament import package_prefix

    exe = package_prefix("mobility_twin") / "lib" / "mobility_twin" / "local_twin"
    args = ["-r", "__ns:=/edge/site_c", "-p", "site_id:=site_c", "-p", "layout_from_topic:=true"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen([sys.executable, str(exe), "--ros-args", *args], stdout=log, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _layout_msg(data: dict):
    from mobility_twin.ros.layout_msg import layout_to_msg
    from mobility_twin_core.layout_io import layout_from_dict

    return layout_to_msg(layout_from_dict(data))


def _published_by_the_new_process(c: Collector, since: float, timeout: float) -> bool:
    return c.wait_for(lambda m: any(t > since for t in c.arrival[OBJECTS]), timeout)


def test_a_restarted_node_starts_from_its_cached_layout_before_any_layout_message_and_the_topic_replaces_it(
        tmp_path, state_folder):
    from mobility_twin.ros.qos import LATCHED
    from mobility_twin_msgs.msg import Layout, TrackedObjectArray

    log_path = tmp_path / "node.log"
    cache = state_folder / "edge__site_c__local_twin" / "layout.json"
    with Collector({OBJECTS: TrackedObjectArray}) as c:
        layout_pub = c.node.create_publisher(Layout, "/infrastructure/layout", LATCHED)
        layout_pub.publish(_layout_msg(LAYOUT))
        with log_path.open("w") as log:
            proc = _local_twin(log)
            try:
                assert _published_by_the_new_process(c, 0.0, 60.0), log_path.read_text()
            finally:
                assert stop(proc) == 0
        assert "layout cbd_pilot from /infrastructure/layout" in log_path.read_text()
        assert json.loads(cache.read_text())["state"]["layout"]["name"] == "cbd_pilot"

        c.node.destroy_publisher(layout_pub)  # from now on no layout is published on the domain
        restarted = time.time()
        with log_path.open("w") as log:
            proc = _local_twin(log)
            try:
                assert _published_by_the_new_process(c, restarted, 60.0), log_path.read_text()
                text = log_path.read_text()
                assert f"layout cbd_pilot from the cache {cache}" in text
                assert "waiting for the layout" not in text

                # the deployment's layout changed meanwhile: the topic's copy replaces the cached one
                moved = {**LAYOUT, "rsus": [{**LAYOUT["rsus"][0], "x": 25.0}]}
                layout_pub = c.node.create_publisher(Layout, "/infrastructure/layout", LATCHED)
                layout_pub.publish(_layout_msg(moved))
                assert c.wait_for(lambda m: "differs from the cached layout" in log_path.read_text(), 60.0), \
                    log_path.read_text()
                replaced = time.time()
                assert _published_by_the_new_process(c, replaced + 0.5, 30.0), log_path.read_text()
            finally:
                assert stop(proc) == 0
    assert json.loads(cache.read_text())["state"]["layout"]["rsus"][0]["x"] == 25.0
    assert "Traceback" not in log_path.read_text()


def test_a_cached_layout_the_topic_confirms_is_kept_without_starting_the_node_again(state_folder):
    import rclpy

    from mobility_twin.ros.layout_source import LayoutSource
    from mobility_twin.ros.qos import LATCHED
    from mobility_twin_msgs.msg import Layout

    with Collector({}) as c:
        c.node.create_publisher(Layout, "/infrastructure/layout", LATCHED).publish(_layout_msg(LAYOUT))
        sources, calls = [], []
        for run in range(2):  # the node, then the node restarted (a new node of the same name)
            node = rclpy.create_node("layout_user", namespace="/cache_test", context=c.context)
            c.executor.add_node(node)
            sources.append(LayoutSource(node, calls.append, layout_file="", from_topic=True, timeout_s=30.0,
                                        config_file="config/test.yaml", cache=""))
            assert len(calls) == 2 * run  # the first start waits for the topic, the restart starts from the cache
            assert c.wait_for(lambda m, s=sources[-1]: s.origin == "topic", 30.0)
            c.executor.remove_node(node)
            node.destroy_node()
    assert len(calls) == 2 and calls[0].name == calls[1].name == "cbd_pilot"  # the topic's copy was the same: kept
    assert (state_folder / "cache_test__layout_user" / "layout.json").exists()


@pytest.mark.parametrize(("case", "params", "why"), [
    ("another deployment", ["layout_name:=cbd_pilot"],
     r"cached layout harbour_test \(.*\) not used: layout 'harbour_test' is not this deployment's: parameter "
     r"'layout_name' is 'cbd_pilot'"),
    ("another ROS domain", [], r"cached layout harbour_test \(.*\) not used: it was received in ROS domain \d+, this "
                               r"node runs in domain \d+"),
    ("too old", ["layout_cache_max_age_s:=60.0"],
     r"cached layout harbour_test \(.*\) not used: this node held it 36\d\d s ago, longer than parameter "
     r"'layout_cache_max_age_s' \(60 s\)"),
])
def test_a_cached_layout_of_another_deployment_or_too_old_is_not_used_and_the_log_says_why(
        tmp_path, state_folder, case, params, why):
    import os
    import re

    from mobility_twin_core.layout_io import layout_from_dict, layout_to_dict

    domain = int(os.environ["ROS_DOMAIN_ID"])
    cache = state_folder / "edge__site_c__local_twin" / "layout.json"
    cache.parent.mkdir(parents=True)
    saved_at = time.time() - (3600.0 if case == "too old" else 5.0)
    cached = layout_to_dict(layout_from_dict({**LAYOUT, "name": "harbour_test"}))
    cache.write_text(json.dumps({"saved_at": saved_at, "state": {
        "layout": cached, "domain_id": domain + 1 if case == "another ROS domain" else domain,
        "node": "/edge/site_c/local_twin"}}))
    result = subprocess.run([sys.executable, "-c", "import sys; from mobility_twin.nodes.local_twin import main; "
                             "sys.exit(main())", "--ros-args", "-r", "__ns:=/edge/site_c", "-p", "site_id:=site_c",
                             "-p", "layout_from_topic:=true", "-p", "layout_timeout_s:=0.5",
                             *[a for p in params for a in ("-p", p)]],
                            capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    assert re.search(why, out), out
    assert "from the cache" not in out
    assert result.returncode == 2 and "no valid layout on /infrastructure/layout" in out  # it waited for the topic
