"""Errors of the twin model, raised at the boundary with the key or path in the message."""


class MobilityTwinError(ValueError):
    """Base of the errors the core raises on bad input (a ValueError, so callers that validate input
    with ``except ValueError`` keep working)."""


class LayoutError(MobilityTwinError):
    """A layout (RSUs, CAVs, edge servers, sites, cloud) that is incomplete or inconsistent."""


class CheckpointError(MobilityTwinError):
    """A checkpoint that is missing, of another kind or format, or unreadable."""
