"""Read a ROS 2 XML launch file into a plan of node processes.

The subset supported is the one ``ros2 launch`` reads with launch_xml + launch_ros, so the same file runs
on a full ROS 2 install:

* ``<launch>`` (root), ``<arg name default description>``, ``<let name value>``
* ``<node pkg exec name namespace args output on_exit respawn respawn_delay respawn_max_retries>`` with
  ``<param name value [value-sep]>``,
  ``<param from>``, nested ``<param name>`` groups, ``<remap from to>``, ``<env name value>``
* ``<include file>`` with ``<arg name value>``
* ``<group [scoped]>``, ``<push-ros-namespace namespace>`` (or ``push_ros_namespace``),
  ``<set_env name value>`` / ``<set-env>``, ``<set_parameter name value>``, ``<set_remap from to>``
* ``if`` / ``unless`` on every action.

Any other tag or attribute is a LaunchError naming the file and line: never silently ignored. Once
loaded, every node's parameter values are checked against the parameters its executable declares
(:mod:`.param_values`): a value the node would refuse is a LaunchError before anything starts.
"""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from .ament import executable as find_executable
from .errors import LaunchError
from .substitutions import Context, as_bool, substitute


# ------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class ParamValue:
    """One inline parameter: its (dotted) name and YAML-typed value."""

    name: str
    value: object


@dataclass(frozen=True)
class ParamFile:
    path: Path


@dataclass(frozen=True)
class NodeAction:
    """One node process as the launch file describes it, with every substitution resolved."""

    package: str
    executable: str
    name: str | None
    namespace: str  # absolute, "/" when none
    parameters: tuple[ParamValue | ParamFile, ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    output: str = "screen"
    shutdown_on_exit: bool = False
    respawn: bool = False  # start the process again whenever it exits (any status), as ros2 launch does
    respawn_delay: float = 0.0  # seconds between an exit and the new start
    respawn_max_retries: int = -1  # respawns allowed (negative: no limit but the runner's crash-loop bound)
    origin: str = ""  # file:line

    @property
    def label(self) -> str:
        return self.name or self.executable

    def executable_path(self) -> Path:
        try:
            return find_executable(self.package, self.executable)
        except LookupError as err:
            raise LaunchError(f"{self.origin}: {err}") from None


@dataclass(frozen=True)
class ArgumentDeclaration:
    name: str
    default: str | None
    description: str
    origin: str


@dataclass
class LaunchPlan:
    nodes: list[NodeAction] = field(default_factory=list)
    arguments: list[ArgumentDeclaration] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ xml with lines
@dataclass
class _Element:
    tag: str
    attrib: dict[str, str]
    line: int
    children: list[_Element] = field(default_factory=list)


def _parse_xml(path: Path) -> _Element:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LaunchError(f"cannot read launch file: {err.strerror}", path) from None
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Element] = []
    root: list[_Element] = []

    def start(tag: str, attrib: dict[str, str]) -> None:
        element = _Element(tag, dict(attrib), parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as err:
        raise LaunchError(f"malformed XML: {xml.parsers.expat.errors.messages[err.code]}", path, err.lineno) from None
    return root[0]


# ------------------------------------------------------------------------------------------ loading
ACTION_CONDITIONS = frozenset({"if", "unless"})
ALLOWED = {
    "arg": {"name", "default", "description"},
    "let": {"name", "value"} | ACTION_CONDITIONS,
    "node": {"pkg", "exec", "name", "namespace", "args", "output", "on_exit", "ros_args", "respawn", "respawn_delay",
             "respawn_max_retries"} | ACTION_CONDITIONS,
    "include": {"file"} | ACTION_CONDITIONS,
    "group": {"scoped", "forwarding"} | ACTION_CONDITIONS,
    "push-ros-namespace": {"namespace"} | ACTION_CONDITIONS,
    "push_ros_namespace": {"namespace"} | ACTION_CONDITIONS,
    "set_env": {"name", "value"} | ACTION_CONDITIONS,
    "set-env": {"name", "value"} | ACTION_CONDITIONS,
    "set_parameter": {"name", "value"} | ACTION_CONDITIONS,
    "set-parameter": {"name", "value"} | ACTION_CONDITIONS,
    "set_remap": {"from", "to"} | ACTION_CONDITIONS,
    "set-remap": {"from", "to"} | ACTION_CONDITIONS,
}
NODE_CHILDREN = {
    "param": {"name", "value", "value-sep", "from"},
    "remap": {"from", "to"},
    "env": {"name", "value"},
}
OUTPUTS = ("screen", "log", "both")


@dataclass(frozen=True)
class _Scope:
    """What a group pushes onto the actions inside it."""

    namespace: str = "/"
    env: tuple[tuple[str, str], ...] = ()
    parameters: tuple[ParamValue, ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()


class _Loader:
    def __init__(self, plan: LaunchPlan) -> None:
        self.plan = plan

    def load_file(self, path: Path, ctx: Context, scope: _Scope, depth: int = 0) -> None:
        if depth > 20:
            raise LaunchError("includes nested more than 20 deep (an include cycle?)", path)
        root = _parse_xml(path)
        self.plan.files.append(path)
        if root.tag != "launch":
            raise LaunchError(f"root element must be <launch>, not <{root.tag}>", path, root.line)
        self._check_attributes(root, set(), ctx)
        self._load_children(root.children, ctx, scope, depth)

    # -- helpers
    def _check_attributes(self, el: _Element, allowed: set[str], ctx: Context) -> None:
        unknown = sorted(set(el.attrib) - allowed)
        if unknown:
            raise LaunchError(
                f"unsupported attribute(s) {', '.join(unknown)} on <{el.tag}>"
                f" (supported: {', '.join(sorted(allowed)) or 'none'})",
                ctx.path, el.line,
            )

    def _attr(self, el: _Element, name: str, ctx: Context, *, required: bool = True,
              default: str | None = None) -> str | None:
        if name not in el.attrib:
            if required:
                raise LaunchError(f"<{el.tag}> needs the attribute {name!r}", ctx.path, el.line)
            return default
        return substitute(el.attrib[name], ctx, el.line)

    def _number(self, el: _Element, name: str, ctx: Context, kind: type, default: float) -> float:
        """A numeric attribute (``kind`` int or float), or ``default`` when absent; an error naming it when it
        is not a finite number of that kind."""
        text = self._attr(el, name, ctx, required=False)
        if text is None:
            return default
        try:
            value = kind(text.strip())
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")):
            what = "an integer" if kind is int else "a number"
            raise LaunchError(f"{name}={text!r} is not {what}", ctx.path, el.line)
        return value

    def _enabled(self, el: _Element, ctx: Context) -> bool:
        if "if" in el.attrib and not as_bool(self._attr(el, "if", ctx), ctx, el.line, "if"):
            return False
        return not ("unless" in el.attrib and as_bool(self._attr(el, "unless", ctx), ctx, el.line, "unless"))

    def _origin(self, el: _Element, ctx: Context) -> str:
        return f"{ctx.path}:{el.line}"

    # -- actions
    def _load_children(self, children: list[_Element], ctx: Context, scope: _Scope, depth: int) -> None:
        for el in children:
            if el.tag not in ALLOWED:
                raise LaunchError(
                    f"unsupported tag <{el.tag}> (supported: {', '.join(sorted(ALLOWED))})", ctx.path, el.line
                )
            self._check_attributes(el, ALLOWED[el.tag], ctx)
            if el.tag not in ("node", "include", "group") and el.children:
                raise LaunchError(f"<{el.tag}> takes no child elements", ctx.path, el.line)
            if el.tag == "arg":
                self._arg(el, ctx)
                continue
            if not self._enabled(el, ctx):
                continue
            tag = el.tag.replace("-", "_")
            if tag == "let":
                ctx.variables[self._attr(el, "name", ctx)] = self._attr(el, "value", ctx)
            elif tag == "node":
                self.plan.nodes.append(self._node(el, ctx, scope))
            elif tag == "include":
                self._include(el, ctx, scope, depth)
            elif tag == "group":
                scoped = as_bool(self._attr(el, "scoped", ctx, required=False, default="true"), ctx, el.line,
                                 "scoped")
                self._load_children(el.children, ctx.child(ctx.path) if scoped else ctx, scope, depth)
            elif tag == "push_ros_namespace":
                scope = replace(scope, namespace=_join_namespace(scope.namespace, self._attr(el, "namespace", ctx)))
            elif tag == "set_env":
                scope = replace(scope, env=(*scope.env, (self._attr(el, "name", ctx), self._attr(el, "value", ctx))))
            elif tag == "set_parameter":
                value = ParamValue(self._attr(el, "name", ctx), _infer(self._attr(el, "value", ctx)))
                scope = replace(scope, parameters=(*scope.parameters, value))
            elif tag == "set_remap":
                pair = (self._attr(el, "from", ctx), self._attr(el, "to", ctx))
                scope = replace(scope, remappings=(*scope.remappings, pair))

    def _arg(self, el: _Element, ctx: Context) -> None:
        name = self._attr(el, "name", ctx)
        default = self._attr(el, "default", ctx, required=False)
        description = el.attrib.get("description", "")
        self.plan.arguments.append(ArgumentDeclaration(name, default, description, self._origin(el, ctx)))
        if name in ctx.variables:
            return
        if default is None:
            raise LaunchError(
                f"launch argument {name!r} is required and was not given (pass {name}:=VALUE)"
                + (f"; it is: {description}" if description else ""),
                ctx.path, el.line,
            )
        ctx.variables[name] = default

    def _include(self, el: _Element, ctx: Context, scope: _Scope, depth: int) -> None:
        target = Path(self._attr(el, "file", ctx))
        if not target.is_absolute():
            target = (ctx.path.parent / target).resolve()
        if not target.is_file():
            raise LaunchError(f"included launch file {target} does not exist", ctx.path, el.line)
        if not target.name.endswith(".xml"):
            raise LaunchError(f"included launch file {target} is not an XML launch file", ctx.path, el.line)
        passed: dict[str, str] = {}
        for child in el.children:
            if child.tag != "arg":
                raise LaunchError(f"<include> takes only <arg> children, not <{child.tag}>", ctx.path, child.line)
            self._check_attributes(child, {"name", "value"}, ctx)
            passed[self._attr(child, "name", ctx)] = self._attr(child, "value", ctx)
        self.load_file(target, ctx.child(target, passed), scope, depth + 1)

    def _node(self, el: _Element, ctx: Context, scope: _Scope) -> NodeAction:
        output = self._attr(el, "output", ctx, required=False, default="screen")
        if output not in OUTPUTS:
            raise LaunchError(f"output={output!r} must be one of {', '.join(OUTPUTS)}", ctx.path, el.line)
        on_exit = self._attr(el, "on_exit", ctx, required=False, default="")
        if on_exit not in ("", "shutdown"):
            raise LaunchError(f"on_exit={on_exit!r}: only 'shutdown' is supported", ctx.path, el.line)
        if "ros_args" in el.attrib:
            raise LaunchError("ros_args is not supported by mtwin launch: use <param> and <remap>", ctx.path, el.line)
        respawn = as_bool(self._attr(el, "respawn", ctx, required=False, default="false"), ctx, el.line, "respawn")
        respawn_delay = self._number(el, "respawn_delay", ctx, float, 0.0)
        if respawn_delay < 0.0:
            raise LaunchError(f"respawn_delay={respawn_delay:g} must be a non-negative number of seconds",
                              ctx.path, el.line)
        respawn_max_retries = self._number(el, "respawn_max_retries", ctx, int, -1)
        namespace = self._attr(el, "namespace", ctx, required=False, default="")
        parameters: list[ParamValue | ParamFile] = list(scope.parameters)
        remappings = list(scope.remappings)
        env = list(scope.env)
        for child in el.children:
            if child.tag not in NODE_CHILDREN:
                raise LaunchError(
                    f"unsupported tag <{child.tag}> inside <node> (supported: {', '.join(NODE_CHILDREN)})",
                    ctx.path, child.line,
                )
            if child.tag == "param":
                parameters.extend(self._params(child, ctx, prefix=""))
                continue
            self._check_attributes(child, NODE_CHILDREN[child.tag], ctx)
            if child.tag == "remap":
                remappings.append((self._attr(child, "from", ctx), self._attr(child, "to", ctx)))
            else:
                env.append((self._attr(child, "name", ctx), self._attr(child, "value", ctx)))
        args = self._attr(el, "args", ctx, required=False, default="")
        return NodeAction(
            package=self._attr(el, "pkg", ctx),
            executable=self._attr(el, "exec", ctx),
            name=self._attr(el, "name", ctx, required=False),
            namespace=_join_namespace(scope.namespace, namespace) if namespace else scope.namespace,
            parameters=tuple(parameters),
            remappings=tuple(remappings),
            arguments=tuple(args.split()),
            env=tuple(env),
            output=output,
            shutdown_on_exit=on_exit == "shutdown",
            respawn=respawn,
            respawn_delay=respawn_delay,
            respawn_max_retries=respawn_max_retries,
            origin=self._origin(el, ctx),
        )

    def _params(self, el: _Element, ctx: Context, prefix: str) -> list[ParamValue | ParamFile]:
        self._check_attributes(el, NODE_CHILDREN["param"], ctx)
        if "from" in el.attrib:
            if set(el.attrib) != {"from"} or el.children:
                raise LaunchError("<param from=...> takes no other attribute and no children", ctx.path, el.line)
            path = Path(self._attr(el, "from", ctx))
            if not path.is_absolute():
                path = (ctx.path.parent / path).resolve()
            if not path.is_file():
                raise LaunchError(f"parameter file {path} does not exist", ctx.path, el.line)
            return [ParamFile(path)]
        name = prefix + self._attr(el, "name", ctx)
        if el.children:
            if "value" in el.attrib:
                raise LaunchError(f"<param name={name!r}> has both a value and nested params", ctx.path, el.line)
            out: list[ParamValue | ParamFile] = []
            for child in el.children:
                if child.tag != "param":
                    raise LaunchError(f"<param> takes only <param> children, not <{child.tag}>", ctx.path, child.line)
                out.extend(self._params(child, ctx, prefix=name + "."))
            return out
        raw = self._attr(el, "value", ctx)
        sep = el.attrib.get("value-sep")
        value = [_infer(part) for part in raw.split(sep)] if sep else _infer(raw)
        return [ParamValue(name, value)]


def _infer(text: str) -> object:
    """Type a parameter value the way launch_ros does: YAML scalars and lists; anything else is a string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) and all(isinstance(v, bool | int | float | str) for v in value) and value:
        return value
    return text


def _join_namespace(current: str, pushed: str) -> str:
    if pushed.startswith("/"):
        joined = pushed
    else:
        joined = current.rstrip("/") + "/" + pushed
    return "/" + "/".join(part for part in joined.split("/") if part) if joined.strip("/") else "/"


def load_launch_file(path: Path | str, arguments: dict[str, str] | None = None, *,
                     check_parameters: bool = True) -> LaunchPlan:
    """Load ``path`` with launch arguments ``name -> value``; every node resolved, nothing started. With
    ``check_parameters`` every node's parameter values are checked as the node would check them
    (:func:`.param_values.check_plan`): a LaunchError names the file, node and parameter of each bad one."""
    path = Path(path).resolve()
    if not path.name.endswith(".xml"):
        raise LaunchError("only XML launch files (*.launch.xml) are supported by mtwin launch", path)
    plan = LaunchPlan()
    given = dict(arguments or {})
    _Loader(plan).load_file(path, Context(dict(given), path), _Scope())
    declared = {a.name for a in plan.arguments}
    unknown = sorted(set(given) - declared)
    if unknown:
        raise LaunchError(
            f"argument(s) {', '.join(unknown)} given but not declared by the launch file"
            f" (declared: {', '.join(sorted(declared)) or 'none'})", path,
        )
    if check_parameters:
        from .param_values import check_plan

        check_plan(plan, path)
    return plan


def declared_arguments(path: Path | str) -> list[ArgumentDeclaration]:
    """The ``<arg>`` declarations at the top level of a launch file, defaults unexpanded (for --show-args)."""
    path = Path(path).resolve()
    root = _parse_xml(path)
    return [
        ArgumentDeclaration(el.attrib.get("name", "?"), el.attrib.get("default"), el.attrib.get("description", ""),
                            f"{path}:{el.line}")
        for el in root.children if el.tag == "arg"
    ]
