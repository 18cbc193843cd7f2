"""Errors of the recording package, raised at its boundary with the file or type they concern."""


class RecordingError(Exception):
    """A recording that cannot be written or read (path, format, missing channel or schema)."""


class DefinitionError(RecordingError):
    """A message type whose definition cannot be found or understood."""
