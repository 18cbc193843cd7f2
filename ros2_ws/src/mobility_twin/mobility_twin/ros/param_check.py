"""Check a launch plan's parameter values against the nodes' declared parameters, before anything starts.

A value that the node would refuse (``duration_s:=abc``, ``coverage_radius_m:=-5``) is an error of the launch
file, reported with the node and the parameter when the file is loaded, not a crash of one node a few
seconds into the run. Each node module lists the config class of each entry point in ``ENTRY_CONFIGS``;
the executable's console script names the entry point.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from importlib.metadata import entry_points
from pathlib import Path

import yaml

from mobility_twin.ros.params import ParameterError, _check, _convert

_LOOSE = {"low": None, "high": None, "choices": None}


def config_class(package: str, executable: str):
    """The config dataclass of a node executable, or None when it declares none (not one of ours)."""
    if package != "mobility_twin":
        return None
    for ep in entry_points(group="console_scripts"):
        if ep.name == executable and ep.value.startswith("mobility_twin.nodes."):
            module_name, _, function = ep.value.partition(":")
            module = importlib.import_module(module_name)
            return getattr(module, "ENTRY_CONFIGS", {}).get(function)
    return None


def file_parameters(path: str | Path, node_name: str) -> dict:
    """The parameters a ROS parameter file gives a node named ``node_name`` (its ``/**`` and own sections)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    out: dict = {}
    for key, section in data.items():
        name = str(key).lstrip("/")
        if key == "/**" or name == node_name or name.endswith("/" + node_name):
            out.update((section or {}).get("ros__parameters", {}) or {})
    return out


def check_values(cls, values: dict) -> list[str]:
    """Errors (one line each) of ``values`` that the node's config ``cls`` would refuse."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    errors = []
    for name, value in values.items():
        f = fields.get(name)
        if f is None:
            continue
        try:
            _check(name, _convert(name, value, hints[name]), {**_LOOSE, **f.metadata})
        except ParameterError as err:
            errors.append(str(err))
    return errors
