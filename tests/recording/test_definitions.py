"""Message definitions and type hashes for MCAP schemas and rosbag2 metadata, from rosbags' type system."""

import json
from pathlib import Path

import pytest

from mobility_twin.launch_runner.ament import package_share
from mobility_twin.recording.definitions import (
    SEPARATOR,
    dependencies,
    message_definition,
    starts_with_header,
    type_hash,
)
from mobility_twin.recording.errors import DefinitionError

pytestmark = pytest.mark.ros  # the interface files come from the installed workspace (AMENT_PREFIX_PATH)

MSG_DIR = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "mobility_twin_msgs" / "msg"
CUSTOM = sorted(p.stem for p in MSG_DIR.glob("*.msg"))
STANDARD = ["std_msgs/msg/String", "std_msgs/msg/Header", "sensor_msgs/msg/PointCloud2", "nav_msgs/msg/Odometry",
            "rosgraph_msgs/msg/Clock", "visualization_msgs/msg/MarkerArray", "diagnostic_msgs/msg/DiagnosticArray"]


def _blocks(text: str) -> dict[str, str]:
    """Dependency name -> its text, and "" -> the top-level text."""
    parts = text.split(f"\n{SEPARATOR}\n")
    out = {"": parts[0]}
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        assert head.startswith("MSG: ")
        name = head.removeprefix("MSG: ")
        assert name not in out, f"{name} appears twice"
        out[name] = body
    return out


def _fields(text: str, name: str):
    """(constants, fields) of a .msg text as rosbags parses it: comments and layout do not count."""
    from rosbags.typesys import get_types_from_msg

    return get_types_from_msg(text, name)[name]


def _installed_hash(type_name: str) -> str:
    """The RIHS01 hash rosidl generated into the installed .json beside the .msg."""
    package, namespace, name = type_name.split("/")
    data = json.loads((package_share(package) / namespace / f"{name}.json").read_text())
    return next(h["hash_string"] for h in data["type_hashes"] if h["type_name"] == type_name)


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_definition_parses_with_the_mcap_ros2_decoder(name):
    from mcap_ros2._dynamic import generate_dynamic

    text = message_definition(f"mobility_twin_msgs/msg/{name}")
    assert f"mobility_twin_msgs/msg/{name}" in generate_dynamic(f"mobility_twin_msgs/msg/{name}", text)


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_definition_has_the_fields_of_its_msg_file_and_defines_every_type_it_uses_once(name):
    full = f"mobility_twin_msgs/msg/{name}"
    blocks = _blocks(message_definition(full))
    assert _fields(blocks[""], full) == _fields((MSG_DIR / f"{name}.msg").read_text(), full)
    defined = {n.replace("/", "/msg/", 1) for n in blocks if n}
    assert defined == set(dependencies(full))
    for dep in defined:  # each block has the fields of that type's installed .msg, and what it uses is defined
        package, _, short = dep.split("/")
        installed = (package_share(package) / "msg" / f"{short}.msg").read_text()
        assert _fields(blocks[dep.replace("/msg/", "/")], dep) == _fields(installed, dep)
        assert set(dependencies(dep)) <= defined


@pytest.mark.parametrize("type_name", [f"mobility_twin_msgs/msg/{n}" for n in CUSTOM] + STANDARD)
def test_type_hash_is_the_one_rosidl_generated(type_name):
    assert type_hash(type_name) == _installed_hash(type_name)
    assert type_hash(type_name).startswith("RIHS01_")


def test_tracked_object_array_uses_what_its_fields_name():
    assert dependencies("mobility_twin_msgs/msg/TrackedObjectArray") == [
        "builtin_interfaces/msg/Time", "geometry_msgs/msg/Point", "geometry_msgs/msg/Pose",
        "geometry_msgs/msg/PoseWithCovariance", "geometry_msgs/msg/Quaternion", "geometry_msgs/msg/Twist",
        "geometry_msgs/msg/TwistWithCovariance", "geometry_msgs/msg/Vector3", "mobility_twin_msgs/msg/SourceFrame",
        "mobility_twin_msgs/msg/TrackedObject", "std_msgs/msg/Header"]


def test_standard_definition_short_and_long_names_agree():
    assert message_definition("std_msgs/Header") == message_definition("std_msgs/msg/Header")
    assert "MSG: builtin_interfaces/Time" in message_definition("std_msgs/Header")


def test_constants_are_kept_and_comments_dropped():
    blocks = _blocks(message_definition("mobility_twin_msgs/msg/TrackedObjectArray"))
    tracked = blocks["mobility_twin_msgs/TrackedObject"]
    assert "uint8 STATE_CONFIRMED=1" in tracked and "#" not in tracked


def test_unknown_types_raise_with_the_type_in_the_message():
    with pytest.raises(DefinitionError, match="no_such_pkg/msg/Nothing"):
        message_definition("no_such_pkg/msg/Nothing")
    with pytest.raises(DefinitionError, match="mobility_twin_msgs/msg/NoSuchType"):
        type_hash("mobility_twin_msgs/msg/NoSuchType")
    with pytest.raises(DefinitionError, match="expected package/msg/Type"):
        message_definition("not a type")


def test_header_first_types_are_recognised():
    assert starts_with_header("mobility_twin_msgs/msg/TrackedObjectArray")
    assert starts_with_header("sensor_msgs/msg/PointCloud2")
    assert not starts_with_header("mobility_twin_msgs/msg/TrackedObject")
    assert not starts_with_header("std_msgs/msg/String")
    assert not starts_with_header("no_such_pkg/msg/Nothing")
