"""The SUMO world: road networks, T-Drive demand, libsumo co-simulation, buildings for the LiDAR.

ROS-free. :class:`SumoWorld` implements :class:`mobility_twin_sim.backend.WorldBackend`; networks come from
:func:`load_network` (``beijing_cbd``, synthetic; ``real_streets``, OpenStreetMap; or a file) and
:func:`build_world_from_osm`; demand from :func:`build_demand`. Generated files are cached under
``$MTWIN_SUMO_CACHE`` (default ``~/.cache/mobility_twin/sumo``).
"""

from mobility_twin_sim.sumo import tools
from mobility_twin_sim.sumo.config import (
    BuildingsSection,
    DemandSection,
    IncidentSection,
    SumoConfigError,
    SumoWorldConfig,
    WorldSection,
)
from mobility_twin_sim.sumo.errors import ControlError, DemandError, NetworkError, SumoError, SumoToolError
from mobility_twin_sim.sumo.network import (
    NETWORKS,
    SYNTHETIC_LABEL,
    BuiltWorld,
    CbdGridSpec,
    NetFrame,
    Network,
    build_beijing_cbd,
    build_world_from_osm,
    check_loads,
    load_network,
    real_streets,
)
from mobility_twin_sim.sumo.prepare import DemandBundle, build_demand
from mobility_twin_sim.sumo.world import SumoSetup, SumoWorld

__all__ = [
    "NETWORKS",
    "SYNTHETIC_LABEL",
    "BuildingsSection",
    "BuiltWorld",
    "CbdGridSpec",
    "ControlError",
    "DemandBundle",
    "DemandError",
    "DemandSection",
    "IncidentSection",
    "NetFrame",
    "Network",
    "NetworkError",
    "SumoConfigError",
    "SumoError",
    "SumoSetup",
    "SumoToolError",
    "SumoWorld",
    "SumoWorldConfig",
    "WorldSection",
    "build_beijing_cbd",
    "build_demand",
    "build_world_from_osm",
    "check_loads",
    "load_network",
    "real_streets",
    "tools",
]
