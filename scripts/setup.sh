#!/usr/bin/env bash
# One-command setup of mobility_twin: Python 3.11 venv in .venv/, ROS 2 wheels and the rest from the
# package registries (pinned by requirements/constraints.txt), the include-path fix for the ROS wheels'
# CMake files, and a colcon build of ros2_ws/ into ros2_ws/install/.
#
# Idempotent: a second run with nothing changed skips the pip step (stamp file) and colcon rebuilds nothing.
# Usage: scripts/setup.sh            (what `make setup` runs)
#        PYTHON=/path/to/python3.11 scripts/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
WS="$ROOT/ros2_ws"
REQ="$ROOT/requirements/requirements.txt"
LOCK="$ROOT/requirements/constraints.txt"
STAMP="$VENV/.mobility_twin_requirements.sha256"
T0=$(date +%s)

SETUP_NAME=setup
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"  # step, fail, find_python311, colcon_build

# ---------------------------------------------------------------------------------------------- python
step "Python 3.11"
find_python311 "the ROS 2 Kilted wheels and the torch file on disk are for CPython 3.11"
echo "using $PYTHON ($("$PYTHON" --version 2>&1))"

# ---------------------------------------------------------------------------------------------- system libraries
step "System libraries (libusb-1.0 for open3d)"
if ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  echo "libusb-1.0-0 present"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian package libusb-1.0-0"
  apt-get install -y -qq libusb-1.0-0 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libusb-1.0-0; } \
    || fail "apt-get could not install libusb-1.0-0" "check the Debian package mirror, then re-run make setup"
else
  fail "libusb-1.0.so.0 is missing (open3d-cpu needs it) and this user cannot apt-get" \
    "run: sudo apt-get install libusb-1.0-0   then re-run make setup"
fi

# ---------------------------------------------------------------------------------------------- venv
step "Virtual environment .venv/"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  fail "$VENV exists but is not Python 3.11" "remove it (rm -rf .venv) and re-run make setup"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || fail "could not create $VENV" "install the venv module (apt-get install python3.11-venv)"
  echo "created $VENV"
else
  echo "reusing $VENV"
fi
VPY="$VENV/bin/python"
# The ROS wheels' bootstrapper re-executes Python with LD_LIBRARY_PATH set; set it once here instead.
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

# ---------------------------------------------------------------------------------------------- pip
step "Python packages (pinned by requirements/constraints.txt)"
want="$(cat "$REQ" "$LOCK" | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
  echo "up to date (requirements unchanged since the last setup)"
else
  # torch is pinned to 2.13.0, the CPU file on this disk: a newer release would download a CUDA build.
  set +e
  echo "installing (about 2 minutes and 1.5 GB on a fresh machine) ..."
  "$VPY" -m pip install --quiet --progress-bar off -r "$REQ" -c "$LOCK" 2>&1 | grep -v -E "^WARNING: Location"
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" = 0 ] || fail "pip could not install requirements/requirements.txt with requirements/constraints.txt" \
    "read the pip output above; if a pinned version is missing from the registry, update it (make lock)"
  echo "$want" > "$STAMP"
fi

# ---------------------------------------------------------------------------------------------- cmake include fix
step "ROS wheel CMake include paths"
# The wheels' exported CMake targets name the include folders of the machine that built them
# (/opt/python/cp311-cp311/...). Point them at this venv's Python and numpy headers instead.
"$VPY" "$ROOT/scripts/fix_ros_wheel_includes.py" "$VENV"

# ---------------------------------------------------------------------------------------------- colcon
step "colcon build of ros2_ws/ (interfaces, core, sim, models, nodes, benchmarks)"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
colcon_build "$WS" "$VPY" "read ros2_ws/log/latest_build/<package>/stdout_stderr.log; after fixing, re-run make setup"

# ---------------------------------------------------------------------------------------------- smoke check
step "Smoke check"
# shellcheck disable=SC1091
source "$ROOT/env.sh"
python -c "from mobility_twin_msgs.msg import TrackedObjectArray; import rclpy, open3d, torch, torch_geometric, shapely; import mobility_twin_core, mobility_twin_sim, mobility_twin_models, mobility_twin_bench" \
  || fail "the environment does not import (mobility_twin_msgs, rclpy, open3d, torch, torch_geometric, shapely)" \
    "remove .venv and ros2_ws/{build,install} and re-run make setup; report the error above if it persists"
mtwin --version

# ---------------------------------------------------------------------------------------------- compiler cache
step "The relation learner's forward pass, compiled once into torch's cache (a node then compiles in seconds)"
python -m mobility_twin_models.relations.precompile \
  || echo "  (not compiled: relation_learner nodes will compile when they start, or predict eagerly)"
echo
echo "setup done in $(( $(date +%s) - T0 )) s.  Next: source env.sh && make test"
