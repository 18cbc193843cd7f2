"""The PNG renderer: a picture of a hand-made scene, of the expected size, in every corner case."""

import numpy as np
import pytest

from mobility_twin.viz.scene import TwinScene
from mobility_twin.viz.snapshot import SnapshotError, default_title, render
from tests.viz.scenes import hand_builder


def _png_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_a_hand_made_scene_renders_to_a_png_of_the_requested_size(tmp_path):
    path = render(hand_builder().scene(), tmp_path / "out" / "twin.png", size_px=(1200, 700))
    assert path.stat().st_size > 20_000
    assert _png_size(path) == (1200, 700)


def test_the_picture_is_not_blank(tmp_path):
    from PIL import Image

    path = render(hand_builder().scene(), tmp_path / "twin.png", size_px=(900, 600))
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # boxes, discs, text: many colours


@pytest.mark.parametrize("detail", [True, False])
def test_empty_and_map_only_scenes_render(tmp_path, detail):
    assert _png_size(render(TwinScene(), tmp_path / "empty.png", size_px=(400, 300), detail=detail)) == (400, 300)
    scene = hand_builder().scene()
    scene.tracks = None
    scene.links = []
    assert _png_size(render(scene, tmp_path / "map.png", size_px=(640, 480), detail=detail)) == (640, 480)


def test_the_default_title_counts_what_is_drawn():
    title = default_title(hand_builder(steps=10).scene())
    assert "hand_made" in title and "t = 4.5 s" in title and "6 tracks" in title and "6 offloading links" in title
    assert "1 migration" in title and "2 true vehicles" in title


def test_a_tiny_image_is_refused(tmp_path):
    with pytest.raises(SnapshotError, match="too small"):
        render(hand_builder().scene(), tmp_path / "x.png", size_px=(50, 50))


def test_traffic_signals_are_drawn_in_their_state(tmp_path):
    from PIL import Image

    from mobility_twin.viz.scene import SignalView
    from mobility_twin.viz.style import SIGNAL_COLOURS

    states = {"GGgrrr": "green", "yyyrrr": "yellow", "rrrrrr": "red", "": "off"}
    assert {s: SignalView("J", 0.0, 0.0, s).colour_name for s in states} == states
    builder = hand_builder()
    builder.on_signals(4.0, [SignalView("J1", 380.0, 20.0, "GGgrrr"), SignalView("J2", 20.0, 280.0, "rrrrrr")])
    scene = builder.scene()
    assert [s.signal_id for s in scene.signals] == ["J1", "J2"]
    path = render(scene, tmp_path / "signals.png", size_px=(900, 600), detail=False)
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=int).reshape(-1, 3)
    for name in ("green", "red"):
        colour = np.round(np.array(SIGNAL_COLOURS[name]) * 255).astype(int)
        assert np.any(np.all(np.abs(pixels - colour) <= 3, axis=1)), f"no {name} signal in the picture"


def test_guided_routes_and_warnings_are_drawn(tmp_path):
    from PIL import Image

    from mobility_twin.viz.scene import WarningView
    from mobility_twin.viz.style import ROUTE_COLOUR, WARNING_COLOUR

    builder = hand_builder()
    builder.on_route(1004.5, "veh_1", np.array([[60.0, 100.0], [200.0, 100.0], [200.0, 250.0]]))
    builder.on_warnings(1004.5, [WarningView("w", (110.0, 105.0), 1.8, 0.7, ("veh_1", "veh_2"))])
    scene = builder.scene()
    assert len(scene.routes) == 1 and len(scene.warnings[0].parties) == 2
    path = render(scene, tmp_path / "acts.png", size_px=(900, 600), detail=False)
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=int).reshape(-1, 3)
    red = np.round(np.array(WARNING_COLOUR) * 255).astype(int)
    assert np.any(np.all(np.abs(pixels - red) <= 3, axis=1)), "no warning in the picture"
    cyan = np.array(ROUTE_COLOUR) * 255 * 0.55 + 255 * 0.45  # translucent over the light map
    assert np.any(np.all(np.abs(pixels - cyan) <= 40, axis=1)), "no route in the picture"
