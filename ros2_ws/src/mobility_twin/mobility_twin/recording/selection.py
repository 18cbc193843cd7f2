"""Which topics to record or play: names or regular expressions, each matched against the whole name.

A plain topic name is its own regular expression (ROS names have no regex metacharacters), so one list
holds both: ``["/infrastructure/layout", "/twin/.*"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mobility_twin.recording.errors import RecordingError

#: What the recorder records by default: the infrastructure (the latched layout, the edge servers' own
#: reports), the simulator's ground truth, every twin output (objects, state, edge servers, relations),
#: offloading decisions, migrations, detections (RSU, CAV and V2X self-reports relayed by edge servers),
#: CAV odometry, the CAVs' route commands and their answers, route guidance and collision warnings, and /clock (the traffic signals are under
#: /infrastructure). Point clouds are big: ``CLOUDS`` adds them.
DEFAULT_TOPICS = (
    "/clock",
    "/infrastructure/.*",
    "/sim/ground_truth",
    "/twin/.*",
    "/offloading/.*",
    "/placement/.*",
    "/allocation/.*",
    "/(rsu|cav)/[^/]+/detections",
    "/edge/[^/]+/v2x",
    "/cav/[^/]+/odom",
    "/cav/[^/]+/(control/)?route_command(/status)?",
    "/cav/[^/]+/destination",
    "/cav/[^/]+/collision_warning",
    "/guidance/.*",
    "/safety/.*",
)
#: Derived for display only (rebuilt by twin_viz from the twin): not recorded by default.
DEFAULT_EXCLUDE = ("/twin/markers",)
CLOUDS = ("/(rsu|cav)/[^/]+/points",)


def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as err:
            raise RecordingError(f"topic pattern {p!r} is not a regular expression: {err}") from None
    return tuple(out)


@dataclass(frozen=True)
class TopicSelection:
    """Topics matching any of ``include`` (all topics when empty) and none of ``exclude``."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", _compile(tuple(self.include)))
        object.__setattr__(self, "_exclude", _compile(tuple(self.exclude)))

    def __call__(self, topic: str) -> bool:
        if any(p.fullmatch(topic) for p in self._exclude):
            return False
        return not self._include or any(p.fullmatch(topic) for p in self._include)

    @classmethod
    def default(cls, *, clouds: bool = False) -> TopicSelection:
        return cls(DEFAULT_TOPICS + (CLOUDS if clouds else ()), DEFAULT_EXCLUDE)
