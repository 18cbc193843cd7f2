"""Errors of the offloading package."""

from mobility_twin_core import CheckpointError


class OffloadingError(ValueError):
    """A configuration, episode or decision input that the offloading model cannot use (the message names it)."""


# Checkpoints of every model share one format and one error (mobility_twin_core.checkpoint).
__all__ = ["CheckpointError", "OffloadingError"]
