"""Errors of the launch runner. Every error names the launch file and line it comes from."""

from __future__ import annotations

from pathlib import Path


class LaunchError(Exception):
    """A launch file that cannot be run as written (unknown tag, missing argument, bad substitution...)."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.message = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")
