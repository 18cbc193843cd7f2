#!/usr/bin/env bash
# The peers' environment: a Python 3.11 venv in .venv-peers/ with the trackers that `mtwin bench trackers`
# runs next to the project's (norfair and motpy from PyPI, filterpy, scipy), pinned by requirements/peers.txt.
# Separate from .venv: norfair 2.3 needs numpy < 2, the project numpy 2. The runner (scripts/peers/run_peers.py)
# is fed recorded detection streams, so nothing of the project needs to be installed here.
#
# Idempotent: a second run with requirements/peers.txt unchanged does nothing (stamp file).
# Usage: scripts/peers/setup_peers.sh     (what `make peers-env` runs)
#        PYTHON=/path/to/python3.11 PEERS_VENV=/path/to/venv scripts/peers/setup_peers.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${PEERS_VENV:-$ROOT/.venv-peers}"
REQ="$ROOT/requirements/peers.txt"
STAMP="$VENV/.peers_requirements.sha256"

SETUP_NAME=peers-env
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"  # fail, find_python311

find_python311

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  fail "$VENV exists but is not Python 3.11" "remove it (rm -rf $VENV) and re-run make peers-env"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || fail "could not create $VENV" "install the venv module (apt-get install python3.11-venv)"
  echo "created $VENV with $PYTHON"
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "$VENV is up to date with requirements/peers.txt"
else
  # none of the project's environment (ROS and .venv paths) may leak into this one
  env -u PYTHONPATH -u VIRTUAL_ENV PYTHONNOUSERSITE=1 "$VENV/bin/python" -m pip install --quiet --upgrade pip \
    || fail "could not upgrade pip in $VENV" "check that PyPI is reachable, then re-run make peers-env"
  env -u PYTHONPATH -u VIRTUAL_ENV PYTHONNOUSERSITE=1 "$VENV/bin/python" -m pip install --quiet -r "$REQ" \
    || fail "pip could not install requirements/peers.txt into $VENV" "check that PyPI is reachable, then re-run make peers-env"
  echo "$want" > "$STAMP"
fi

env -u PYTHONPATH -u VIRTUAL_ENV PYTHONNOUSERSITE=1 "$VENV/bin/python" - <<'PY' || fail "the peers' environment does not import its trackers" "rm -rf .venv-peers and re-run make peers-env"
import sys
from importlib.metadata import version
import numpy, norfair, motpy, scipy  # noqa: F401
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: norfair 2.3 needs numpy < 2"
print("peers' environment ready:", sys.executable, ", ".join(f"{p} {version(p)}" for p in ("norfair", "motpy", "filterpy", "scipy", "numpy")))
PY
