#!/usr/bin/env bash
# The environment of mobility_twin on a full ROS 2 install: ROS 2, the virtual environment of
# docker/setup_ros.sh, the built workspace, and the `mtwin` command.
#   In the image (its ENTRYPOINT):  docker run --rm mobility_twin:kilted ros2 launch mobility_twin ...
#   On a host with ROS 2:           source docker/entrypoint.sh   (then ros2 launch mobility_twin ...)
_mt_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${ROS_DISTRO:-}" ]; then
  for _mt_setup in /opt/ros/*/setup.bash; do ROS_DISTRO="$(basename "$(dirname "$_mt_setup")")"; done
fi
# shellcheck disable=SC1090
source "/opt/ros/${ROS_DISTRO:?no ROS 2 in /opt/ros}/setup.bash"
# shellcheck disable=SC1091
source "${MTWIN_VENV:-$_mt_root/.venv}/bin/activate"
# shellcheck disable=SC1091
source "$_mt_root/ros2_ws/install/setup.bash"
export MTWIN_ROOT="$_mt_root" PYTHONUNBUFFERED=1
# torch's compiler cache in a lasting folder (mount a volume there to keep it across containers), as env.sh
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mobility_twin/torchinductor}"
case ":$PATH:" in *":$_mt_root/bin:"*) ;; *) export PATH="$_mt_root/bin:$PATH" ;; esac
unset _mt_root _mt_setup

if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced: run the command
  exec "${@:-bash}"
fi
