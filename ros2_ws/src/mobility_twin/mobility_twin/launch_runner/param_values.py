"""Every node's parameter values checked against its declared parameters when a launch file is loaded.

For each node of the plan whose executable declares its parameters (``ENTRY_CONFIGS`` of the project's
node modules, found by :func:`mobility_twin.ros.param_check.config_class`), the values the node would
receive, from its parameter files and inline ``<param>`` values in their order (later ones win, as under
ROS; a file gives the node its ``/**`` section and the one of its name), are checked as the node itself
would check them at start: type, range, choices, then the config's own cross-field ``check()``. A value
the node would refuse stops the launch before any process starts, with one line per bad value naming the
launch file, the node, the parameter and where its value was set::

    mtwin launch: error: launch/demo.launch.xml: node 'replay' (mobility_twin/replay, .../replay.launch.xml:13):
    parameter 'duration_s': cannot use 'abc' as float (from a <param> of the launch file, or the launch
    argument it uses)

Nodes of other packages, and parameters a config does not declare, are not checked (the node decides).
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache
from pathlib import Path

import yaml

from .errors import LaunchError
from .xml_loader import LaunchPlan, NodeAction, ParamFile, ParamValue


@cache
def _config_class(package: str, executable: str):
    """The config dataclass of an executable, or None (not one of ours, or its module cannot be imported:
    the node then reports that itself when it starts)."""
    from mobility_twin.ros.param_check import config_class

    try:
        return config_class(package, executable)
    except Exception:  # an import error of the node module is the node's own start-up error
        return None


def _flatten(values: dict, prefix: str = "") -> dict:
    """Nested parameter mappings as ROS reads them: ``{a: {b: 1}}`` is the parameter ``a.b``."""
    out: dict = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def effective_parameters(node: NodeAction) -> dict[str, tuple[object, str]]:
    """Parameter name -> (value, where it was set) of what ``node`` receives, later sources winning."""
    from mobility_twin.ros.param_check import file_parameters

    name = node.name or node.executable
    out: dict[str, tuple[object, str]] = {}
    for source in node.parameters:
        if isinstance(source, ParamFile):
            try:
                values = file_parameters(source.path, name)
            except (OSError, yaml.YAMLError, AttributeError) as err:
                raise LaunchError(f"{node.origin}: parameter file {source.path} of node {node.label!r} cannot be "
                                  f"read as a ROS parameter file: {err}") from None
            out.update((k, (v, f"in {source.path}")) for k, v in _flatten(values).items())
        else:
            assert isinstance(source, ParamValue)
            out[source.name] = (source.value, "from a <param> of the launch file, or the launch argument it uses")
    return out


def node_errors(node: NodeAction) -> list[str]:
    """Why ``node`` would refuse its parameter values (one line each), or [] (also for nodes not checked)."""
    from mobility_twin.ros.param_check import check_values
    from mobility_twin.ros.params import ParameterError, _convert

    cls = _config_class(node.package, node.executable)
    if cls is None:
        return []
    given = effective_parameters(node)
    errors = [f"{err} ({given[name][1]})" for name, (value, _) in given.items()
              for err in check_values(cls, {name: value})]
    if errors:
        return errors
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in given:
            try:
                values[f.name] = _convert(f.name, given[f.name][0], hints[f.name])
            except ParameterError as err:  # already refused above; kept for safety
                return [str(err)]
    try:
        config = cls(**values)
        check = getattr(config, "check", None)
        if check is not None:
            check()
    except ValueError as err:
        return [f"{err} (the values given together)"]
    return []


def check_plan(plan: LaunchPlan, path: Path | str | None = None) -> None:
    """Raise a :class:`LaunchError` naming the launch file (``path``, default the plan's first file), every
    node and parameter whose value its node would refuse; nothing when all are acceptable."""
    lines = []
    for node in plan.nodes:
        for err in node_errors(node):
            lines.append(f"node {node.label!r} ({node.package}/{node.executable}, {node.origin}): {err}")
    if lines:
        where = path if path is not None else (plan.files[0] if plan.files else None)
        detail = lines[0] if len(lines) == 1 else f"{len(lines)} parameter values would be refused:\n  " + \
            "\n  ".join(lines)
        raise LaunchError(f"{detail}\nnothing was started: fix the value(s) in the launch file, its arguments or the "
                          "parameter file named", where)
