"""Errors of the placement package."""

from mobility_twin_core import CheckpointError


class PlacementError(ValueError):
    """A configuration, instance or decision that the placement model cannot use (the message names it)."""


# Checkpoints of every model share one format and one error (mobility_twin_core.checkpoint).
__all__ = ["CheckpointError", "PlacementError"]
