"""Colours shared by the rviz markers and the PNG snapshots, so both pictures read the same way. ROS-free.

Colours are (r, g, b) floats in [0, 1].
"""

from __future__ import annotations

import math

Colour = tuple[float, float, float]

#: track colour by what sensed it (see :func:`mobility_twin.viz.builder.source_kind`)
SOURCE_COLOURS: dict[str, Colour] = {
    "rsu": (0.20, 0.55, 0.95),  # blue: roadside LiDARs only
    "cav": (1.00, 0.55, 0.10),  # orange: vehicle LiDARs only
    "v2x": (0.70, 0.40, 0.90),  # purple: self-reports relayed by a base station only
    "fused": (0.15, 0.80, 0.40),  # green: more than one kind of source
    "none": (0.60, 0.60, 0.60),
}
SOURCE_LABELS = {"rsu": "RSU only", "cav": "CAV only", "v2x": "V2X only", "fused": "fused", "none": "no source"}

#: per edge server (links drawn in their server's colour), cycled
SERVER_PALETTE: tuple[Colour, ...] = (
    (0.89, 0.10, 0.47), (0.10, 0.65, 0.75), (0.85, 0.65, 0.05), (0.45, 0.35, 0.85), (0.55, 0.75, 0.15),
    (0.95, 0.40, 0.30), (0.30, 0.45, 0.65), (0.70, 0.45, 0.25),
)

RSU_COLOUR: Colour = (0.10, 0.70, 0.85)
STALE_COLOUR: Colour = (0.55, 0.55, 0.55)
MIGRATION_COLOUR: Colour = (1.00, 0.85, 0.10)
GROUND_TRUTH_COLOUR: Colour = (0.85, 0.85, 0.85)  # on a dark background (rviz)
GROUND_TRUTH_DARK: Colour = (0.45, 0.45, 0.45)  # on a light background (PNG)
#: traffic signals by what most of their links show (viz.scene.SignalView.colour_name)
ROUTE_COLOUR: Colour = (0.05, 0.75, 0.85)  # a CAV's guided route
WARNING_COLOUR: Colour = (0.95, 0.10, 0.10)  # a predicted conflict
SIGNAL_COLOURS: dict[str, Colour] = {"green": (0.15, 0.7, 0.25), "yellow": (0.95, 0.75, 0.1),
                                     "red": (0.85, 0.15, 0.12), "off": (0.6, 0.6, 0.6)}


def _ramp(t: float) -> Colour:
    """Green (0) -> yellow (0.5) -> red (1)."""
    t = min(max(t, 0.0), 1.0)
    if t < 0.5:
        return (0.2 + 1.6 * t * 0.8, 0.8, 0.2)
    return (1.0, 0.8 - 1.4 * (t - 0.5), 0.2 - 0.2 * (t - 0.5))


def load_colour(load: float) -> Colour:
    """Server colour by load in [0, 1]: green idle, yellow half, red saturated."""
    return _ramp(load)


def age_colour(age_s: float, age_max_s: float) -> Colour:
    """Track colour by age of information: green fresh, yellow at half ``age_max_s``, red from ``age_max_s``."""
    if not math.isfinite(age_s):
        return STALE_COLOUR
    return _ramp(age_s / age_max_s if age_max_s > 0 else 1.0)


def server_colour(index: int) -> Colour:
    return SERVER_PALETTE[index % len(SERVER_PALETTE)]
