"""Complete message definitions as rosbag2 writes them into MCAP schemas (ros2msg)."""

from pathlib import Path

import pytest

from mobility_twin.recording.definitions import (
    SEPARATOR,
    dependencies,
    message_definition,
    starts_with_header,
)
from mobility_twin.recording.errors import DefinitionError

pytestmark = pytest.mark.ros  # the .msg files come from the installed workspace (AMENT_PREFIX_PATH)

MSG_DIR = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "mobility_twin_msgs" / "msg"
CUSTOM = sorted(p.stem for p in MSG_DIR.glob("*.msg"))


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


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_definition_parses_with_the_mcap_ros2_decoder(name):
    from mcap_ros2._dynamic import generate_dynamic

    text = message_definition(f"mobility_twin_msgs/msg/{name}")
    assert f"mobility_twin_msgs/msg/{name}" in generate_dynamic(f"mobility_twin_msgs/msg/{name}", text)


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_definition_starts_with_its_msg_file_and_holds_every_dependency_once(name):
    text = message_definition(f"mobility_twin_msgs/msg/{name}")
    blocks = _blocks(text)
    assert blocks[""] == (MSG_DIR / f"{name}.msg").read_text()
    for dep_name, body in blocks.items():  # every type used anywhere is defined in the text
        package = dep_name.split("/")[0] if dep_name else "mobility_twin_msgs"
        assert set(dependencies(body, package)) <= set(blocks) - {""}


def test_tracked_object_array_lists_its_dependencies_depth_first_in_name_order():
    names = [line.removeprefix("MSG: ") for line in message_definition(
        "mobility_twin_msgs/msg/TrackedObjectArray").splitlines() if line.startswith("MSG: ")]
    assert names == ["mobility_twin_msgs/SourceFrame", "builtin_interfaces/Time", "mobility_twin_msgs/TrackedObject",
                     "geometry_msgs/PoseWithCovariance", "geometry_msgs/Pose", "geometry_msgs/Point",
                     "geometry_msgs/Quaternion", "geometry_msgs/TwistWithCovariance", "geometry_msgs/Twist",
                     "geometry_msgs/Vector3", "std_msgs/Header"]


def test_standard_definition_short_and_long_names_agree():
    assert message_definition("std_msgs/Header") == message_definition("std_msgs/msg/Header")
    assert "MSG: builtin_interfaces/Time" in message_definition("std_msgs/Header")


def test_dependencies_skip_primitives_constants_and_comments():
    text = "# a comment with Words in it\nuint8 KIND=1\nfloat64[36] covariance\nPoint p\ngeometry_msgs/Pose[] poses\n"
    assert dependencies(text, "my_pkg") == ["geometry_msgs/Pose", "my_pkg/Point"]


def test_unknown_types_raise_with_the_type_in_the_message():
    with pytest.raises(DefinitionError, match="no_such_pkg/msg/Nothing"):
        message_definition("no_such_pkg/msg/Nothing")
    with pytest.raises(DefinitionError, match="expected package/msg/Type"):
        message_definition("not a type")


def test_header_first_types_are_recognised():
    assert starts_with_header("mobility_twin_msgs/msg/TrackedObjectArray")
    assert starts_with_header("sensor_msgs/msg/PointCloud2")
    assert not starts_with_header("mobility_twin_msgs/msg/TrackedObject")
    assert not starts_with_header("std_msgs/msg/String")
