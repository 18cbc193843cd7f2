# Shell functions the host setup scripts share (sourced by scripts/setup.sh and scripts/peers/setup_peers.sh).
# A script sets SETUP_NAME (what "failed" in its error lines, e.g. "setup") before it sources this file.
# docker/setup_ros.sh keeps its own copies of step and fail: its first phases run in image layers that have only
# that file; its build phase, which has the whole repository, sources this file for colcon_build.

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

fail() {
  printf '\n\033[31m%s failed:\033[0m %s\n' "${SETUP_NAME:-setup}" "$1" >&2
  [ $# -gt 1 ] && printf 'what to do: %s\n' "$2" >&2
  exit 1
}

# Sets PYTHON: $PYTHON when given, else the first of python3.11, python3 that is Python 3.11; stops with an
# error when there is none (the reason 3.11 is needed, $1, is added to it when given).
find_python311() {
  PYTHON="${PYTHON:-}"
  if [ -z "$PYTHON" ]; then
    for cand in python3.11 python3; do
      if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        PYTHON="$(command -v "$cand")"; break
      fi
    done
  fi
  [ -n "$PYTHON" ] || fail "no Python 3.11 found${1:+ ($1)}" \
    "install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
}

# The colcon build of the workspace $1 (ros2_ws/) that `make setup` and docker/setup_ros.sh both run, with the
# Python $2 (the venv's: the nodes' shebang); $3: what to do when it fails.
colcon_build() {
  export PYTHONWARNINGS="ignore::DeprecationWarning,ignore::UserWarning"
  (
    cd "$1" || exit 1  # (set -e does not hold in a subshell followed by ||)
    colcon --log-base log build --symlink-install --event-handlers console_cohesion- summary+ status- \
      --cmake-args -DPython3_EXECUTABLE="$2" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release -Wno-dev
  ) || fail "colcon build failed" "$3"
}
