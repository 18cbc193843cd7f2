"""Errors of the relation-learning package."""


class RelationsError(Exception):
    """Base class: a bad input to the relation models (named in the message)."""


class CheckpointError(RelationsError):
    """A checkpoint that cannot be read, or that does not fit the model asked for."""
