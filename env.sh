# Source me:  source env.sh
# Puts the project's virtual environment (.venv/) and built ROS 2 workspace (ros2_ws/install/) on the
# path: python, colcon, the `mtwin` command, the mobility_twin_msgs interfaces and the node executables.
# Works in bash and zsh. Run `make setup` first.

if [ -n "${BASH_SOURCE:-}" ]; then _mt_here="${BASH_SOURCE[0]}"; elif [ -n "${ZSH_VERSION:-}" ]; then _mt_here="${(%):-%x}"; else _mt_here="$0"; fi
MTWIN_ROOT="$(cd "$(dirname "$_mt_here")" && pwd)"
unset _mt_here
export MTWIN_ROOT

if [ ! -x "$MTWIN_ROOT/.venv/bin/python" ]; then
  echo "env.sh: $MTWIN_ROOT/.venv is missing; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi

_mt_site="$MTWIN_ROOT/.venv/lib/python3.11/site-packages"
_mt_install="$MTWIN_ROOT/ros2_ws/install"

_mt_prepend() {  # _mt_prepend VAR DIR: put DIR first in the colon list VAR, once
  eval "_mt_cur=\${$1:-}"
  case ":$_mt_cur:" in *":$2:"*) ;; *) eval "export $1=\"$2\${_mt_cur:+:\$_mt_cur}\"" ;; esac
  unset _mt_cur
}

export VIRTUAL_ENV="$MTWIN_ROOT/.venv"
_mt_prepend PATH "$VIRTUAL_ENV/bin"
_mt_prepend PATH "$MTWIN_ROOT/bin"

# Shared libraries of the ROS wheels (what ros_wheels_bootstrapper would otherwise set by re-executing python).
_mt_prepend LD_LIBRARY_PATH "$VIRTUAL_ENV/lib"
for _mt_d in "$_mt_site"/ros_*.libs; do [ -d "$_mt_d" ] && _mt_prepend LD_LIBRARY_PATH "$_mt_d"; done
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

# The ROS wheels in the venv are an underlay (their share/ folders hold the message packages' ament index).
_mt_prepend AMENT_PREFIX_PATH "$VIRTUAL_ENV"
_mt_prepend CMAKE_PREFIX_PATH "$VIRTUAL_ENV"

# The workspace: colcon's own setup script puts every package (interfaces, core, sim, models, nodes,
# benchmarks) on the ament index, PYTHONPATH and PATH.
# (colcon's scripts read unset variables: allow that while they run, even under `set -u`)
case $- in *u*) _mt_nounset=1; set +u ;; *) _mt_nounset= ;; esac
if [ -n "${ZSH_VERSION:-}" ] && [ -f "$_mt_install/setup.zsh" ]; then
  source "$_mt_install/setup.zsh"
elif [ -f "$_mt_install/setup.bash" ]; then
  source "$_mt_install/setup.bash"
else
  echo "env.sh: $_mt_install is missing; run 'make setup' first" >&2
fi
[ -n "$_mt_nounset" ] && set -u
unset _mt_d _mt_site _mt_install _mt_nounset
unset -f _mt_prepend

export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export PYTHONUNBUFFERED=1
# torch's compiler cache (the relation learner's compiled forward pass, made by `make setup`): a lasting folder, not
# torch's default under /tmp, which a reboot empties (every relation_learner would then compile again, about a
# minute on 2 cores).
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mobility_twin/torchinductor}"
# Fast DDS: the stack's participant profile (a shared-memory segment that fits LiDAR clouds), unless set.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$MTWIN_ROOT/config/fastdds.xml}"
