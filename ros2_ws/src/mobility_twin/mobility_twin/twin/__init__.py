"""The mobility twin (ROS-free): local twins per edge site, federated into the global twin."""

from .channels import InputChannel, default_channels, load_channels
from .global_twin import GlobalTwin, GlobalTwinConfig, SiteState
from .local_twin import EntityTwin, LocalSnapshot, LocalTwin, LocalTwinConfig, ServerEstimate

__all__ = ["EntityTwin", "GlobalTwin", "GlobalTwinConfig", "InputChannel", "LocalSnapshot", "LocalTwin",
           "LocalTwinConfig", "ServerEstimate", "SiteState", "default_channels", "load_channels"]
