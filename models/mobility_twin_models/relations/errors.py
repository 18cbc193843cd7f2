"""Errors of the relation-learning package."""

from mobility_twin_core import CheckpointError


class RelationsError(Exception):
    """Base class: a bad input to the relation models (named in the message)."""


# Checkpoints of every model share one format and one error (mobility_twin_core.checkpoint).
__all__ = ["CheckpointError", "RelationsError"]
