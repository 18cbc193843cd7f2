"""docker/compose.yaml read the way Docker Compose reads it, and its services as processes on this machine.

No Docker engine runs here, so the tests take each service's command (``ros2 launch mobility_twin
X.launch.xml name:=value ...``) and run the same launch file with the same arguments under ``mtwin
launch``: on one machine, or each service on its own host (network namespace).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
PACKAGE = "mobility_twin"

# A small scenario with the ids the compose file names (rsu_00 and rsu_01, both in site_1, as in the
# default scenario) and a light LiDAR, so that the whole topology runs on a loaded 2-core machine.
SMALL_SITE_1 = {
    "name": "compose_check", "seed": 5,
    "area": {"box_m": [-300, 250, 600, 500]},  # two sites split at x = 150 m: both RSUs in site_1
    "time": {"start": "2008-02-02 16:10:00", "duration_s": 300.0, "max_gap_s": 300.0, "fold": 3},
    "rsus": {"layout": {"kind": "positions"}, "positions": [[450, 350], [390, 350]],
             "lidar": {"channels": 16, "azimuth_steps": 512, "rate_hz": 5.0}},
    "cavs": {"count": 0},
    "sites": {"count": 2},
}

_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*)|(\{[^}]*\}?))")


class ComposeError(ValueError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose variable interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``.

    The other forms of the specification (``:?``, ``:+``, nesting) are not used by the project's compose
    file; they raise, so that a new one is noticed here rather than read wrongly.
    """

    def one(m: re.Match) -> str:
        dollar, name, op, default, bare, other = m.groups()
        if dollar:
            return "$"
        if other is not None:
            raise ComposeError(f"unsupported interpolation ${other} in {text!r}")
        if bare:
            return env.get(bare, "")
        if op is None:
            return env.get(name, "")
        if "$" in default:
            raise ComposeError(f"nested interpolation in {text!r}")
        value = env.get(name)
        if op == ":-":
            return value if value else default
        return default if value is None else value

    return _VAR.sub(one, text)


def _interpolate_tree(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}  # keys are never interpolated
    return node


def load_compose(path: Path = COMPOSE, env: dict[str, str] | None = None) -> dict:
    """The compose file as a dict, variables interpolated from ``env`` (default: this process's)."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ComposeError(f"{path}: no services mapping")
    return _interpolate_tree(data, dict(os.environ if env is None else env))


@dataclass(frozen=True)
class RoleLaunch:
    """One service's ``ros2 launch mobility_twin FILE name:=value ...``."""

    service: str
    launch_file: Path  # in the repository's launch/
    arguments: dict[str, str]
    environment: dict[str, str]

    def mtwin_argv(self) -> list[str]:
        """The same launch under this install's runner: ``mtwin launch launch/FILE name:=value ...``."""
        return [sys.executable, "-m", "mobility_twin.cli", "launch", str(self.launch_file),
                *(f"{k}:={v}" for k, v in self.arguments.items())]


def role_launch(name: str, service: dict) -> RoleLaunch:
    command = service.get("command")
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise ComposeError(f"service {name}: command must be a list of strings, got {command!r}")
    if command[:3] != ["ros2", "launch", PACKAGE] or len(command) < 4:
        raise ComposeError(f"service {name}: command must be `ros2 launch {PACKAGE} FILE ...`, got {command}")
    arguments = {}
    for arg in command[4:]:
        key, sep, value = arg.partition(":=")
        if not sep or not key:
            raise ComposeError(f"service {name}: launch argument {arg!r} is not name:=value")
        arguments[key] = value
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return RoleLaunch(name, REPO / "launch" / command[3], arguments, {k: str(v) for k, v in env.items()})


def role_launches(env: dict[str, str] | None = None, path: Path = COMPOSE) -> dict[str, RoleLaunch]:
    """Every service of the compose file as a role launch, in file order."""
    return {name: role_launch(name, svc) for name, svc in load_compose(path, env)["services"].items()}
