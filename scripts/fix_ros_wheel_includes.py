"""Point the ROS 2 wheels' exported CMake targets at this environment's Python and numpy headers.

The wheels on PyPI were built in a manylinux container, and the exported targets of every message
package (``share/<pkg>/cmake/export_<pkg>__rosidl_generator_pyExport.cmake``) name that container's
include folders under ``/opt/python/cp311-cp311``. CMake refuses targets whose include folders do
not exist, so building a custom interface package fails. Rewriting the paths in place (inside the
virtual environment, no root needed) fixes that; running it again changes nothing.

Usage: python scripts/fix_ros_wheel_includes.py VENV
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

BUILD_PYTHON_INCLUDE = "/opt/python/cp311-cp311/include/python3.11"
BUILD_NUMPY_INCLUDE = "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"


def fix(venv: Path) -> int:
    """Rewrite the include paths under ``venv/share``; return the number of files changed."""
    import numpy

    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    for needed in (python_include, numpy_include):
        if not Path(needed, "Python.h" if needed == python_include else "numpy").exists():
            raise SystemExit(
                f"include folder {needed} lacks its headers; install the Python 3.11 development "
                "headers (python3.11-dev) and re-run make setup"
            )
    changed = 0
    share = venv / "share"
    if not share.is_dir():
        raise SystemExit(f"{share} does not exist: are the ROS wheels installed in {venv}?")
    for path in share.glob("*/cmake/*.cmake"):
        text = path.read_text()
        if "/opt/python/cp311-cp311" not in text:
            continue
        text = text.replace(BUILD_NUMPY_INCLUDE, numpy_include).replace(BUILD_PYTHON_INCLUDE, python_include)
        path.write_text(text)
        changed += 1
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    n = fix(Path(sys.argv[1]))
    print(f"rewrote include paths in {n} CMake file(s)" if n else "include paths already fixed")
