"""mobility_twin_core: the ROS-free twin model every package of mobility_twin builds on.

* :mod:`mobility_twin_core.model`: the frozen types (RSU, CAV, edge server, site, cloud, layout, the twin
  snapshot), the association rule (:class:`~mobility_twin_core.model.ServerSet`) and the enumerations of
  the interfaces;
* :mod:`mobility_twin_core.layout_io`: layouts to and from plain data (``config/layout.yaml``);
* :mod:`mobility_twin_core.checkpoint`: the one checkpoint format of every shipped model.
"""

from mobility_twin_core.errors import CheckpointError, LayoutError, MobilityTwinError
from mobility_twin_core.model import (
    VEHICLE_CLASSES,
    Cav,
    Cloud,
    EdgeServer,
    EntityKind,
    Layout,
    ObjectClass,
    Rsu,
    ServerSet,
    Site,
    SourceType,
    TrackState,
    TwinSnapshot,
    nearest_site,
    snapshot_of,
)

__all__ = [
    "VEHICLE_CLASSES",
    "Cav",
    "CheckpointError",
    "Cloud",
    "EdgeServer",
    "EntityKind",
    "Layout",
    "LayoutError",
    "MobilityTwinError",
    "ObjectClass",
    "Rsu",
    "ServerSet",
    "Site",
    "SourceType",
    "TrackState",
    "TwinSnapshot",
    "nearest_site",
    "snapshot_of",
]
