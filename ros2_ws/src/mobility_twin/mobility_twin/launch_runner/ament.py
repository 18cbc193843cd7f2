"""Look-ups in the ament resource index (AMENT_PREFIX_PATH), as ament_index_python does."""

from __future__ import annotations

import os
from pathlib import Path


def _prefixes() -> list[Path]:
    return [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def package_prefix(package: str) -> Path:
    """The install prefix holding ``package``; LookupError when no prefix on AMENT_PREFIX_PATH has it."""
    prefixes = _prefixes()
    for prefix in prefixes:
        if (prefix / "share" / "ament_index" / "resource_index" / "packages" / package).is_file():
            return prefix
    if not prefixes:
        raise LookupError(f"package {package!r} not found: AMENT_PREFIX_PATH is empty (source env.sh)")
    raise LookupError(f"package {package!r} not found on AMENT_PREFIX_PATH (built? sourced env.sh?)")


def package_share(package: str) -> Path:
    return package_prefix(package) / "share" / package


def executable(package: str, name: str) -> Path:
    """``<prefix>/lib/<package>/<name>``, where ``ros2 run`` and ``ros2 launch`` find node executables."""
    folder = package_prefix(package) / "lib" / package
    path = folder / name
    if path.is_file() and os.access(path, os.X_OK):
        return path
    available = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise LookupError(
        f"no executable {name!r} in package {package!r} ({folder}); available: {', '.join(available) or 'none'}"
    )
