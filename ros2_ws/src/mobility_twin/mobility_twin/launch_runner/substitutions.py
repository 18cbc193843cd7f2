"""The substitution language of ROS 2 front-end launch files: ``$(name arg ...)``, nestable.

Supported: ``$(var NAME)``, ``$(env NAME [DEFAULT])``, ``$(optenv NAME [DEFAULT])``,
``$(find-pkg-share PKG)``, ``$(find-pkg-prefix PKG)``, ``$(dirname)``, ``$(filename)``,
``$(anon NAME)``, ``$(eval EXPR)`` (arithmetic and comparisons only). Anything else is an error.
"""

from __future__ import annotations

import ast
import operator
import os
import shlex
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .ament import package_prefix, package_share
from .errors import LaunchError


@dataclass
class Context:
    """What substitutions can see: launch configurations (args and lets), and the current file."""

    variables: dict[str, str]
    path: Path
    environment: Mapping[str, str] = field(default_factory=lambda: os.environ)
    anon_names: dict[str, str] = field(default_factory=dict)

    def child(self, path: Path, extra: Mapping[str, str] | None = None) -> Context:
        """A context for an included file or a scoped group: a copy of the variables."""
        variables = dict(self.variables)
        variables.update(extra or {})
        return Context(variables, path, self.environment, self.anon_names)


def _var(ctx: Context, line: int, args: list[str]) -> str:
    _arity("var", args, 1, 1, ctx, line)
    if args[0] not in ctx.variables:
        known = ", ".join(sorted(ctx.variables)) or "none"
        raise LaunchError(f"$(var {args[0]}): no launch argument or let named {args[0]!r} (known: {known})",
                          ctx.path, line)
    return ctx.variables[args[0]]


def _env(ctx: Context, line: int, args: list[str], *, optional: bool) -> str:
    name = "optenv" if optional else "env"
    _arity(name, args, 1, 2, ctx, line)
    if args[0] in ctx.environment:
        return ctx.environment[args[0]]
    if len(args) == 2:
        return args[1]
    if optional:
        return ""
    raise LaunchError(f"$(env {args[0]}): environment variable is not set and no default given", ctx.path, line)


def _find(ctx: Context, line: int, args: list[str], *, share: bool) -> str:
    name = "find-pkg-share" if share else "find-pkg-prefix"
    _arity(name, args, 1, 1, ctx, line)
    try:
        return str(package_share(args[0]) if share else package_prefix(args[0]))
    except LookupError as err:
        raise LaunchError(f"$({name} {args[0]}): {err}", ctx.path, line) from None


def _dirname(ctx: Context, line: int, args: list[str]) -> str:
    _arity("dirname", args, 0, 0, ctx, line)
    return str(ctx.path.parent)


def _filename(ctx: Context, line: int, args: list[str]) -> str:
    _arity("filename", args, 0, 0, ctx, line)
    return str(ctx.path)


def _anon(ctx: Context, line: int, args: list[str]) -> str:
    _arity("anon", args, 1, 1, ctx, line)
    return ctx.anon_names.setdefault(args[0], f"{args[0]}_{uuid.uuid4().hex[:8]}")


_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}


def _safe_eval(node: ast.AST) -> object:
    if isinstance(node, ast.Expression):
        return _safe_eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        value = _safe_eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else not value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_safe_eval(node.left), _safe_eval(node.right))
    if isinstance(node, ast.BoolOp):
        values = [_safe_eval(v) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return _COMPARE[type(node.ops[0])](_safe_eval(node.left), _safe_eval(node.comparators[0]))
    raise ValueError(f"unsupported expression element {type(node).__name__}")


def _eval(ctx: Context, line: int, args: list[str]) -> str:
    expr = " ".join(args)
    try:
        value = _safe_eval(ast.parse(expr, mode="eval"))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError) as err:
        raise LaunchError(f"$(eval {expr}): {err}", ctx.path, line) from None
    return str(value).lower() if isinstance(value, bool) else str(value)


def _arity(name: str, args: list[str], lo: int, hi: int, ctx: Context, line: int) -> None:
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise LaunchError(f"$({name} ...) takes {want} argument(s), got {len(args)}: {args}", ctx.path, line)


SUBSTITUTIONS: dict[str, Callable[[Context, int, list[str]], str]] = {
    "var": _var,
    "env": lambda c, n, a: _env(c, n, a, optional=False),
    "optenv": lambda c, n, a: _env(c, n, a, optional=True),
    "find-pkg-share": lambda c, n, a: _find(c, n, a, share=True),
    "find-pkg-prefix": lambda c, n, a: _find(c, n, a, share=False),
    "dirname": _dirname,
    "filename": _filename,
    "anon": _anon,
    "eval": _eval,
}


def substitute(text: str, ctx: Context, line: int) -> str:
    """Expand every ``$(...)`` in ``text``, innermost first."""
    out: list[str] = []
    i = 0
    while i < len(text):
        start = text.find("$(", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        end = _matching_paren(text, start + 1, ctx, line)
        inner = substitute(text[start + 2:end], ctx, line)
        out.append(_apply(inner, ctx, line))
        i = end + 1
    return "".join(out)


def _matching_paren(text: str, open_index: int, ctx: Context, line: int) -> int:
    depth = 0
    for j in range(open_index, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    raise LaunchError(f"unbalanced parentheses in substitution {text!r}", ctx.path, line)


def _apply(expression: str, ctx: Context, line: int) -> str:
    head, _, rest = expression.strip().partition(" ")
    if head == "eval":  # a Python expression: its quotes belong to it
        return _eval(ctx, line, [rest.strip()])
    try:
        parts = shlex.split(expression)
    except ValueError as err:
        raise LaunchError(f"cannot parse substitution $({expression}): {err}", ctx.path, line) from None
    if not parts:
        raise LaunchError("empty substitution $()", ctx.path, line)
    name, args = parts[0], parts[1:]
    if name not in SUBSTITUTIONS:
        raise LaunchError(
            f"unsupported substitution $({name} ...); supported: {', '.join(sorted(SUBSTITUTIONS))}",
            ctx.path, line,
        )
    return SUBSTITUTIONS[name](ctx, line, args)


def as_bool(value: str, ctx: Context, line: int, attribute: str) -> bool:
    """The launch files' boolean: true/false (any case) or 1/0."""
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise LaunchError(f"{attribute}={value!r} is not a boolean (true, false, 1, 0)", ctx.path, line)
