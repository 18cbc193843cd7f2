"""Errors of the allocation package."""


class AllocationError(ValueError):
    """A configuration, state or allocation that the allocation model cannot use (the message names the key)."""


class CheckpointError(AllocationError):
    """An allocator checkpoint that is missing, unreadable, or does not fit the allocator it is loaded into."""
