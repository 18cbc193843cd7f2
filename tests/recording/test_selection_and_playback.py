"""Topic selection by names and regular expressions, and the playback schedule for a rate (ROS-free)."""

import pytest

from mobility_twin.recording import RecordingError, TopicSelection
from mobility_twin.recording.playback import PlaybackClock, schedule


def test_names_and_regular_expressions_match_whole_topic_names():
    pick = TopicSelection(("/infrastructure/layout", "/twin/.*"), ("/twin/markers",))
    assert pick("/infrastructure/layout") and pick("/twin/global/objects") and pick("/twin/local/site_0/state")
    assert not pick("/infrastructure/layout_extra")  # whole name: a name is not a prefix
    assert not pick("/twin/markers")  # excluded wins
    assert not pick("/rsu/rsu_00/points")


def test_an_empty_include_list_selects_everything_not_excluded():
    pick = TopicSelection((), ("/rosout",))
    assert pick("/anything/at/all") and not pick("/rosout")


def test_default_selection_records_the_twin_and_leaves_clouds_and_markers_out():
    pick = TopicSelection.default()
    for topic in ("/infrastructure/layout", "/infrastructure/edge_servers/reports", "/sim/ground_truth",
                  "/twin/global/objects", "/twin/local/site_0/objects",
                  "/twin/global/state", "/twin/relations", "/offloading/decisions", "/placement/migrations",
                  "/rsu/rsu_03/detections", "/cav/cav_1/detections", "/edge/edge_2/v2x", "/cav/cav_1/odom", "/clock"):
        assert pick(topic), topic
    for topic in ("/rsu/rsu_03/points", "/cav/cav_1/points", "/twin/markers", "/rosout", "/parameter_events",
                  "/sim/world"):  # the JSON layout is no longer published: nothing to record
        assert not pick(topic), topic
    assert TopicSelection.default(clouds=True)("/rsu/rsu_03/points")


def test_a_bad_regular_expression_is_an_error_naming_it():
    with pytest.raises(RecordingError, match=r"'/twin/\(' is not a regular expression"):
        TopicSelection(("/twin/(",))


def test_messages_are_due_at_their_log_time_offset_divided_by_the_rate():
    t = [5_000_000_000, 5_500_000_000, 7_000_000_000]
    assert schedule(t, 1.0) == [0.0, 0.5, 2.0]
    assert schedule(t, 2.0) == [0.0, 0.25, 1.0]
    assert schedule(t, 0.5) == [0.0, 1.0, 4.0]
    assert schedule(t, 0.0) == [0.0, 0.0, 0.0]  # as fast as possible
    assert schedule([], 1.0) == []


def test_playback_position_follows_the_rate():
    clock = PlaybackClock(first_ns=10_000_000_000, started=100.0, rate=2.0)
    assert clock.position_ns(101.5) == 13_000_000_000
    assert clock.due(12_000_000_000) == pytest.approx(101.0)
    assert clock.due(9_000_000_000) == 100.0  # before the start: due at once
    with pytest.raises(ValueError, match="negative"):
        PlaybackClock(0, 0.0, -1.0)


def test_the_recorder_config_file_lists_the_default_selection():
    from pathlib import Path

    import yaml

    from mobility_twin.recording.selection import DEFAULT_EXCLUDE, DEFAULT_TOPICS

    config = Path(__file__).resolve().parents[2] / "config" / "recorder.yaml"
    params = yaml.safe_load(config.read_text())["/**"]["ros__parameters"]
    assert (tuple(params["topics"]), tuple(params["exclude"])) == (DEFAULT_TOPICS, DEFAULT_EXCLUDE)


def test_play_offers_what_the_recorded_publishers_offered():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from mobility_twin.recording import OfferedQos
    from mobility_twin.recording.qos import BEST_EFFORT, TRANSIENT_LOCAL
    from mobility_twin.ros.recorder import publisher_qos

    latched = publisher_qos("/twin/global/objects", [OfferedQos(durability=TRANSIENT_LOCAL, depth=10),
                                                     OfferedQos(durability=TRANSIENT_LOCAL, depth=3)])
    assert latched.durability == DurabilityPolicy.TRANSIENT_LOCAL and latched.depth == 10  # the deepest kept
    assert publisher_qos("/infrastructure/layout").depth == 1  # nothing recorded: the named profile
    mixed = publisher_qos("/twin/global/objects", [OfferedQos(), OfferedQos(durability=TRANSIENT_LOCAL)])
    assert mixed.durability == DurabilityPolicy.VOLATILE  # a volatile publisher among them: volatile
    lossy = publisher_qos("/rsu/r1/points", [OfferedQos(reliability=BEST_EFFORT)])
    assert lossy.reliability == ReliabilityPolicy.BEST_EFFORT
