"""Errors of the SUMO world, raised at the boundary with the file, name or id in the message."""

from __future__ import annotations


class SumoError(Exception):
    """Base class: something the SUMO world cannot do as asked."""


class SumoToolError(SumoError):
    """A SUMO program (netgenerate, netconvert, duarouter, od2trips, sumo ...) failed or is missing."""


class NetworkError(SumoError):
    """A road network that is unknown, does not load, or lacks what the world needs."""


class DemandError(SumoError):
    """Demand that cannot be built (no data in the area, nothing routable, a bad OD matrix)."""


class ControlError(SumoError):
    """A control command the running world rejects: unknown vehicle or edge, an unreachable target."""
