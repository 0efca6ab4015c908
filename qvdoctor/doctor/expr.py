"""A small, safe expression language for check entries.

Checks are data; their conditions and computed fixes are Python-like expressions over the
evaluation context (``gpu.cc``, ``pkg('torch').version``, ``log.max_seq_len``...). Only
literals, names, attribute/item access, arithmetic, comparisons, boolean logic, conditional
expressions and calls to whitelisted functions are allowed. Missing attributes are ``None``.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from typing import Any, Callable, Mapping

from qvdoctor.errors import QvError


class ExprError(Exception):
    """An expression that cannot be parsed or evaluated."""


class Obj:
    """Attribute access over dicts and dataclasses; unknown names give ``None``."""

    __slots__ = ("_data",)

    def __init__(self, data: Any):
        self._data = data

    def __getattr__(self, name: str) -> Any:
        data = self._data
        if isinstance(data, Mapping):
            return wrap(data.get(name))
        return wrap(getattr(data, name, None))

    def __eq__(self, other: Any) -> bool:
        return self._data == (other._data if isinstance(other, Obj) else other)

    def __hash__(self) -> int:
        return id(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __repr__(self) -> str:
        return f"Obj({self._data!r})"

    def unwrap(self) -> Any:
        return self._data


def wrap(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, Obj)):
        return value
    if isinstance(value, (list, tuple)):
        return [wrap(v) for v in value]
    if isinstance(value, Mapping) or hasattr(value, "__dataclass_fields__"):
        return Obj(value)
    return value


def unwrap(value: Any) -> Any:
    if isinstance(value, Obj):
        return value.unwrap()
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, dict):  # a dict literal of an expression may hold wrapped values ({'k': f(x)})
        return {k: unwrap(v) for k, v in value.items()}
    return value


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


@functools.lru_cache(maxsize=4096)
def compile_expr(source: str) -> ast.expression:
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error in expression {source!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExprError(f"private attribute {node.attr!r} in {source!r}")
        if isinstance(node, (ast.Lambda, ast.NamedExpr, ast.Starred, ast.Await, ast.Yield, ast.YieldFrom)):
            raise ExprError(f"{type(node).__name__} not allowed in {source!r}")
    return tree


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate an expression; the result is unwrapped to plain Python values."""
    return unwrap(_eval(compile_expr(source).body, names, source))


def _eval(node: ast.AST, names: Mapping[str, Any], src: str) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            if name not in names:
                raise ExprError(f"unknown name {name!r} in {src!r}")
            return wrap(names[name])
        case ast.Attribute(value=base, attr=attr):
            obj = _eval(base, names, src)
            if obj is None:
                return None
            if isinstance(obj, Obj):
                return getattr(obj, attr)
            raise ExprError(f"cannot read .{attr} of a {type(obj).__name__} in {src!r}")
        case ast.Subscript(value=base, slice=index):
            obj = _eval(base, names, src)
            key = _eval(index, names, src)
            if obj is None:
                return None
            if isinstance(obj, Obj):
                return getattr(obj, str(key))
            try:
                return obj[key]
            except (IndexError, KeyError):
                return None
        case ast.BoolOp(op=ast.And(), values=values):
            result: Any = True
            for value in values:
                result = _eval(value, names, src)
                if not result:
                    return result
            return result
        case ast.BoolOp(op=ast.Or(), values=values):
            result = False
            for value in values:
                result = _eval(value, names, src)
                if result:
                    return result
            return result
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _eval(operand, names, src)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_eval(operand, names, src)
        case ast.BinOp(left=left, op=op, right=right):
            fn = _BINOPS.get(type(op))
            if fn is None:
                raise ExprError(f"operator {type(op).__name__} not allowed in {src!r}")
            a, b = _eval(left, names, src), _eval(right, names, src)
            if a is None or b is None:
                return None
            return fn(unwrap(a), unwrap(b))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            a = _eval(left, names, src)
            for op, comp in zip(ops, comparators):
                b = _eval(comp, names, src)
                ua, ub = unwrap(a), unwrap(b)
                if (ua is None or ub is None) and type(op) in (ast.Lt, ast.LtE, ast.Gt, ast.GtE):
                    return False  # unknown values never satisfy an ordering
                if not _CMPOPS[type(op)](ua, ub):
                    return False
                a = b
            return True
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _eval(body if _eval(test, names, src) else orelse, names, src)
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            return [_eval(e, names, src) for e in elts]
        case ast.Dict(keys=keys, values=values):
            return {unwrap(_eval(k, names, src)): _eval(v, names, src) for k, v in zip(keys, values)}
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=kwargs):
            fn = names.get(fname)
            if not callable(fn) or isinstance(fn, Obj):
                raise ExprError(f"{fname!r} is not a function in {src!r}")
            return wrap(fn(*[unwrap(_eval(a, names, src)) for a in args], **{k.arg: unwrap(_eval(k.value, names, src)) for k in kwargs}))
        case ast.ListComp(elt=elt, generators=[ast.comprehension(target=ast.Name(id=var), iter=it, ifs=ifs, is_async=0)]):
            out = []
            for item in _eval(it, names, src) or []:
                scope = {**names, var: item}
                if all(_eval(cond, scope, src) for cond in ifs):
                    out.append(_eval(elt, scope, src))
            return out
    raise ExprError(f"{type(node).__name__} not allowed in {src!r}")


_TEMPLATE = re.compile(r"\{\{|\}\}|\{([^{}]+)\}")


def render(template: str, names: Mapping[str, Any]) -> str:
    """Fill ``{expression}`` holes in a text; ``{{`` and ``}}`` are literal braces."""

    def fill(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        value = evaluate(match.group(1), names)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "unknown" if value is None else str(value)

    if "{" in _TEMPLATE.sub("", template) or "}" in _TEMPLATE.sub("", template):
        raise ExprError(f"template has an unbalanced or nested hole: {template[:80]!r}")
    return _TEMPLATE.sub(fill, template)


def value_of(spec: Any, names: Mapping[str, Any]) -> Any:
    """A patch value: strings starting with ``=`` are expressions, others are literals/templates."""
    if isinstance(spec, str):
        if spec.startswith("="):
            return evaluate(spec[1:], names)
        return render(spec, names)
    return spec


def parse_cc(text: str) -> tuple[int, int]:
    """``"7.5"`` -> ``(7, 5)``; raises QvError for anything else."""
    match = re.fullmatch(r"\s*(\d{1,2})\.(\d)\s*", str(text))
    if not match:
        raise QvError(f"invalid compute capability {text!r}", "write it as MAJOR.MINOR, e.g. 7.5 or 9.0")
    return int(match.group(1)), int(match.group(2))
