"""Errors of the offloading package."""


class OffloadingError(ValueError):
    """A configuration, episode or decision input that the offloading model cannot use (the message names it)."""


class CheckpointError(OffloadingError):
    """An actor-critic checkpoint that is missing, unreadable, or does not fit the decision it is asked for."""
