"""The mobility twin (ROS-free): local twins per edge site, federated into the global twin."""

from .global_twin import GlobalTwin, GlobalTwinConfig, SiteState
from .local_twin import EntityTwin, LocalSnapshot, LocalTwin, LocalTwinConfig, ServerSpec, ServerTwin

__all__ = ["EntityTwin", "GlobalTwin", "GlobalTwinConfig", "LocalSnapshot", "LocalTwin", "LocalTwinConfig",
           "ServerSpec", "ServerTwin", "SiteState"]
