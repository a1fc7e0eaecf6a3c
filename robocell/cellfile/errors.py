"""Reading a cell file's YAML and turning validation failures into plain messages.

The cell-file models (``robocell.cellfile.spec``) raise their own problems through
:func:`problem` (one message for the field being validated) and
:func:`problems` (several messages, each for a sub-path, from a cross-field
check).  :func:`format_errors` turns pydantic's error list into lines of the
form ``objects[1].mass: -0.1 is not allowed: must be > 0 kg`` -- the field
path, the bad value and what is allowed -- so a user never reads pydantic's
own wording or a traceback.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml

from robocell.cellfile.yamlio import load_yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from robocell.errors import CellFileError

Loc = tuple[str | int, ...]

#: pydantic error type of one message raised by our own validators
VALUE_ERROR = "cell_value"
#: pydantic error type of a cross-field check carrying several (sub-path, message) pairs
PROBLEMS_ERROR = "cell_problems"

# Extra words for a missing required field, by field name.
_MISSING_HINTS = {
    "version": "add 'version: 1' at the top of the file",
    "name": "give a name",
    "arms": "give at least one arm, e.g. '- {name: panda, model: panda}'",
    "pose": "give the pose as {xyz: [x, y, z], rpy: [roll, pitch, yaw]} in m and rad",
    "shape": "give one of box, cylinder, mesh",
    "size": "give the size in m",
    "type": "give one of bin, tray",
    "eye": "give the camera position [x, y, z] in m",
    "target": "give the point the camera looks at, [x, y, z] in m",
}


# ---- showing values ------------------------------------------------------------
def show(value: Any, limit: int = 80) -> str:
    """A value as the user wrote it in YAML, shortened to ``limit`` characters."""
    text = _show(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)}: {_show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, BaseModel):
        return _show(v.model_dump())
    return repr(v)


def _key(k: Any) -> str:
    return k if isinstance(k, str) else _show(k)


def path_text(loc: Sequence[Hashable]) -> str:
    """``("objects", 1, "mass")`` -> ``objects[1].mass``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key(part)
    return out or "(top level)"


# ---- raising problems from validators ---------------------------------------------
def problem(message: str) -> PydanticCustomError:
    """One problem with the value being validated (message names the value and what is allowed)."""
    return PydanticCustomError(VALUE_ERROR, "{message}", {"message": message})


def problems(items: Sequence[tuple[Loc, str]]) -> PydanticCustomError:
    """Several problems found by a cross-field check, each at a path below the model."""
    summary = "; ".join(f"{path_text(loc)}: {msg}" for loc, msg in items)
    return PydanticCustomError(PROBLEMS_ERROR, "{summary}", {"summary": summary, "problems": tuple(items)})


# ---- formatting pydantic's errors ---------------------------------------------------
def format_errors(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One ``path: message`` line per problem, in the order pydantic found them."""
    lines: list[str] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == PROBLEMS_ERROR:
            for sub, msg in ctx["problems"]:
                lines.append(f"{path_text(loc + tuple(sub))}: {msg}")
            continue
        lines.append(f"{path_text(loc)}: {_message(err, loc, root)}")
    return lines


def format_problems(items: Sequence[tuple[Loc, str]]) -> list[str]:
    """``path: message`` lines for problems found outside pydantic."""
    return [f"{path_text(loc)}: {msg}" for loc, msg in items]


def _message(err: Any, loc: Loc, root: type[BaseModel]) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == VALUE_ERROR:
        return str(ctx["message"])
    if kind == "missing":
        field = loc[-1] if loc else ""
        hint = _MISSING_HINTS.get(str(field))
        return "missing required field" + (f"; {hint}" if hint else "")
    if kind == "extra_forbidden":
        allowed = fields_at(root, loc[:-1])
        listing = ", ".join(allowed) if allowed else "(none)"
        return f"unknown field; allowed fields are: {listing}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        allowed = fields_at(root, loc)
        listing = f" with fields from: {', '.join(allowed)}" if allowed else ""
        return f"{show(value)} is not allowed: must be a mapping (key: value){listing}"
    if kind in ("list_type", "tuple_type"):
        return f"{show(value)} is not allowed: must be a list"
    if kind == "literal_error":
        return f"{show(value)} is not allowed: must be one of {ctx.get('expected', '?')}"
    if kind == "too_short":
        return f"{show(value)} is not allowed: needs at least {ctx.get('min_length')} entries"
    if kind == "too_long":
        return f"{show(value)} is not allowed: takes at most {ctx.get('max_length')} entries"
    if kind in ("string_type", "str_type"):
        return f"{show(value)} is not allowed: must be text"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float"):
        return f"{show(value)} is not allowed: must be a number"
    # Anything else: still name the value, then pydantic's short reason.
    return f"{show(value)} is not allowed: {err['msg']}"


def fields_at(root: type[BaseModel], loc: Loc) -> list[str] | None:
    """The field names of the model found at ``loc`` below ``root`` (None if not a model)."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = tp.model_fields.get(part)
            if field is None:
                return None
            tp = field.annotation
            continue
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (tuple, list) and args:
            tp = args[0]
        elif origin is dict and len(args) == 2:
            tp = args[1]
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return sorted(tp.model_fields)
    return None


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the interesting type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[0]
        else:
            return tp


# ---- reading YAML ----------------------------------------------------------------
def read_yaml(path: Path, label: str) -> Any:
    """The parsed YAML of a file; CellFileError with file, line and column on any problem."""
    if not path.exists():
        raise CellFileError(f"cell file {label} does not exist; check the path (relative to {Path.cwd()})")
    if path.is_dir():
        raise CellFileError(f"cell file {label} is a folder; give the path of a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CellFileError(f"cell file {label} cannot be read: {exc}") from exc
    try:
        return load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        raise CellFileError(_yaml_message(exc, text, label)) from None
    except yaml.YAMLError as exc:
        raise CellFileError(f"cell file {label} is not valid YAML: {exc}") from None


def _yaml_message(exc: yaml.MarkedYAMLError, text: str, label: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem_text = exc.problem or exc.context or "syntax error"
    if mark is None:
        return f"cell file {label} is not valid YAML: {problem_text}"
    msg = f"cell file {label} is not valid YAML: line {mark.line + 1}, column {mark.column + 1}: {problem_text}"
    if exc.context and exc.context_mark is not None and exc.problem:
        msg += f" ({exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
    lines = text.splitlines()
    if not 0 <= mark.line < len(lines) and exc.context_mark is not None:
        mark = exc.context_mark  # the problem is at the end of the file: show where the construct began
    if 0 <= mark.line < len(lines):
        msg += f"\n  {lines[mark.line]}\n  {' ' * mark.column}^"
    return msg
