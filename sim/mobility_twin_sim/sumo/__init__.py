"""The SUMO world: road networks, T-Drive demand, libsumo co-simulation, buildings for the LiDAR.

ROS-free. :class:`SumoWorld` implements :class:`mobility_twin_sim.backend.WorldBackend`; networks come from
:func:`load_network` (``beijing_cbd``, synthetic; ``real_streets``, OpenStreetMap; or a file) and
:func:`build_world_from_osm`; demand from :func:`build_demand`. Generated files are cached under
``$MTWIN_SUMO_CACHE`` (default ``~/.cache/mobility_twin/sumo``).
"""

from __future__ import annotations

import importlib
import typing

# name -> submodule; imported on first use, so that the scenario parser can import the light ``config``
# (its ``world:`` section) without pulling in libsumo, sumolib or the LiDAR (which imports the scenario back)
_EXPORTS = {
    "tools": "", "BuildingsSection": "config", "DemandSection": "config", "IncidentSection": "config",
    "SumoConfigError": "config", "SumoWorldConfig": "config", "WorldSection": "config",
    "ControlError": "errors", "DemandError": "errors", "NetworkError": "errors", "SumoError": "errors",
    "SumoToolError": "errors",
    "NETWORKS": "network", "SYNTHETIC_LABEL": "network", "BuiltWorld": "network", "CbdGridSpec": "network",
    "NetFrame": "network", "Network": "network", "build_beijing_cbd": "network",
    "build_world_from_osm": "network", "check_loads": "network", "load_network": "network",
    "real_streets": "network",
    "DemandBundle": "prepare", "build_demand": "prepare",
    "SumoSetup": "world", "SumoWorld": "world",
}

if typing.TYPE_CHECKING:  # pragma: no cover
    from mobility_twin_sim.sumo import tools
    from mobility_twin_sim.sumo.config import (
        BuildingsSection,
        DemandSection,
        IncidentSection,
        SumoConfigError,
        SumoWorldConfig,
        WorldSection,
    )
    from mobility_twin_sim.sumo.errors import (
        ControlError,
        DemandError,
        NetworkError,
        SumoError,
        SumoToolError,
    )
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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module == "":
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
