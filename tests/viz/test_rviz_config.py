"""config/mobility_twin.rviz shows what the demo stack publishes: every topic it subscribes to exists there with
the display's message type and a QoS the publisher can serve; frame map, top-down view."""

import pytest
import yaml

from tests.viz.rviz_config import RVIZ_CONFIG, rviz_subscriptions, stack_publications


@pytest.fixture(scope="module")
def default_layout():
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    return build_world(load_scenario("default")).layout


def test_every_rviz_topic_is_published_by_the_default_stack_with_the_displays_type(default_layout):
    published = stack_publications(default_layout)
    subscribed = rviz_subscriptions()
    assert {t for t, _, _ in subscribed} >= {"/twin/markers", "/rsu/rsu_00/points"}
    for topic, msg_type, reliability in subscribed:
        assert topic in published, f"{RVIZ_CONFIG.name} subscribes to {topic}, which the demo stack does not publish"
        assert published[topic][0] == msg_type, topic
        if reliability == "Reliable":  # a reliable subscription gets nothing from a best-effort publisher
            assert published[topic][1] == "Reliable", f"{topic}: rviz asks Reliable, the stack publishes best effort"


def test_the_view_is_top_down_in_the_map_frame():
    manager = yaml.safe_load(RVIZ_CONFIG.read_text())["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "map"
    assert manager["Views"]["Current"]["Class"] == "rviz_default_plugins/TopDownOrtho"
    assert any(d["Class"] == "rviz_default_plugins/Grid" for d in manager["Displays"])


def test_an_unknown_display_class_is_reported_not_skipped(tmp_path):
    bad = tmp_path / "bad.rviz"
    bad.write_text(yaml.safe_dump({"Visualization Manager": {"Displays": [
        {"Class": "rviz_default_plugins/Image", "Name": "camera", "Topic": {"Value": "/camera"}}]}}))
    with pytest.raises(ValueError, match="Image is not known"):
        rviz_subscriptions(bad)


def test_the_default_layout_rsu_frames_have_static_transform_commands(default_layout):
    from mobility_twin.viz.frames import static_transform_commands

    commands = static_transform_commands(default_layout)
    assert len(commands) == len(default_layout.rsus)
    assert commands[0] == ("ros2 run tf2_ros static_transform_publisher --x 450 --y 350 --z 6 --yaw 0 "
                           "--frame-id map --child-frame-id rsu_00/lidar")
