"""Errors of the placement package."""


class PlacementError(ValueError):
    """A configuration, instance or decision that the placement model cannot use (the message names it)."""


class CheckpointError(PlacementError):
    """A DDL checkpoint that is missing, unreadable or does not fit the scene it is asked to decide."""
