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

# The ament index: the venv (ROS wheels) and the workspace packages.
_mt_prepend AMENT_PREFIX_PATH "$VIRTUAL_ENV"
_mt_prepend CMAKE_PREFIX_PATH "$VIRTUAL_ENV"
for _mt_pkg in mobility_twin_msgs mobility_twin; do
  _mt_p="$_mt_install/$_mt_pkg"
  [ -d "$_mt_p" ] || continue
  _mt_prepend AMENT_PREFIX_PATH "$_mt_p"
  _mt_prepend CMAKE_PREFIX_PATH "$_mt_p"
  [ -d "$_mt_p/lib" ] && _mt_prepend LD_LIBRARY_PATH "$_mt_p/lib"
  [ -d "$_mt_p/lib/python3.11/site-packages" ] && _mt_prepend PYTHONPATH "$_mt_p/lib/python3.11/site-packages"
  # colcon --symlink-install leaves an egg-link (a develop install) for ament_python packages; current
  # setuptools no longer writes the easy-install.pth that would put its target on sys.path, so do it here.
  for _mt_link in "$_mt_p"/lib/python3.11/site-packages/*.egg-link; do
    [ -f "$_mt_link" ] && _mt_prepend PYTHONPATH "$(head -n 1 "$_mt_link")"
  done
done
unset _mt_d _mt_p _mt_pkg _mt_link _mt_site _mt_install
unset -f _mt_prepend

export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export PYTHONUNBUFFERED=1
# Fast DDS: the stack's participant profile (a shared-memory segment that fits LiDAR clouds), unless set.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$MTWIN_ROOT/config/fastdds.xml}"
