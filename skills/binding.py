"""Checking a skill call's arguments against its declared parameters and the cell."""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from spatialmath import SE3

from robocell.errors import SkillError
from robocell.skills.registry import Param, SkillSpec

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec


@dataclass(frozen=True)
class CellNames:
    """The names a skill argument may refer to, by kind."""

    objects: tuple[str, ...]
    fixtures: tuple[str, ...]
    slots: tuple[str, ...]
    frames: tuple[str, ...]  # every named frame, including the ones above

    @classmethod
    def from_spec(cls, spec: CellSpec) -> CellNames:
        objects = tuple(o.name for o in spec.objects)
        fixtures = tuple(f.name for f in spec.fixtures)
        slots = tuple(s for f in spec.fixtures if f.slots is not None for s in f.slot_poses())
        frames = ("world",) + tuple(a.name for a in spec.arms) + objects + fixtures + slots + tuple(
            f.name for f in spec.frames
        )
        return cls(objects, fixtures, slots, frames)

    def allowed(self, kind: str) -> tuple[str, ...]:
        if kind == "object":
            return self.objects
        if kind == "target":
            return self.objects + self.fixtures + self.slots + tuple(
                f for f in self.frames if f not in self.objects + self.fixtures + self.slots
            )
        return self.frames


def bind(spec: SkillSpec, args: Mapping[str, Any], names: CellNames | None) -> dict[str, Any]:
    """Validated keyword arguments for ``spec``; raises SkillError listing every problem."""
    if not isinstance(args, Mapping):
        raise SkillError(f"skill '{spec.name}': arguments must be a mapping of name: value, got {args!r}")
    problems: list[str] = []
    known = {p.name for p in spec.params}
    for key in args:
        if key not in known:
            problems.append(
                f"unknown parameter '{key}'; {spec.name} takes: {', '.join(sorted(known)) or '(nothing)'}"
            )
    out: dict[str, Any] = {}
    for p in spec.params:
        if p.name not in args:
            if p.required:
                problems.append(f"missing parameter '{p.name}' ({p.type_text()})")
            else:
                out[p.name] = p.default
            continue
        try:
            out[p.name] = _convert(p, args[p.name], names)
        except SkillError as exc:
            problems.append(str(exc))
    if problems:
        raise SkillError(f"skill '{spec.name}': " + "; ".join(problems) + f". Signature: {spec.signature()}")
    return out


def _convert(p: Param, value: Any, names: CellNames | None) -> Any:
    if value is None:
        if p.required and not _optional(p.annotation):
            raise SkillError(f"parameter '{p.name}' must not be empty")
        return None
    kind = p.ref
    if kind == "pose":
        return pose_from_value(value, p.name)
    if kind is not None:
        if not isinstance(value, str):
            raise SkillError(f"parameter '{p.name}' = {value!r} must be a {kind} name (text)")
        if names is not None and value not in names.allowed(kind):
            raise SkillError(
                f"parameter '{p.name}': unknown {kind} '{value}'; the cell has: "
                f"{', '.join(names.allowed(kind)) or '(none)'}"
            )
        return value
    try:
        result = TypeAdapter(p.annotation).validate_python(value, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SkillError(
            f"parameter '{p.name}' = {value!r} is not a valid {p.type_text()} ({first['msg'].lower()})"
        ) from None
    if isinstance(result, float) and not math.isfinite(result):
        raise SkillError(f"parameter '{p.name}' = {value!r} must be a finite number")
    return result


def pose_from_value(value: Any, name: str = "pose") -> SE3:
    """A world pose from an SE3 or ``[x, y, z, roll, pitch, yaw]`` (m, rad)."""
    if isinstance(value, SE3):
        if not all(math.isfinite(float(v)) for v in value.A.flat):
            raise SkillError(f"parameter '{name}': the pose contains NaN or Inf")
        return value
    if isinstance(value, (list, tuple)) and len(value) == 6:
        try:
            nums = [float(v) for v in value]
        except (TypeError, ValueError):
            raise SkillError(f"parameter '{name}' = {value!r}: every element must be a number") from None
        bad = [i for i, v in enumerate(nums) if not math.isfinite(v)]
        if bad:
            raise SkillError(f"parameter '{name}' = {value!r}: element {bad[0]} is NaN or Inf")
        return SE3.Trans(nums[:3]) * SE3.RPY(nums[3:])
    raise SkillError(
        f"parameter '{name}' = {value!r} must be a pose [x, y, z, roll, pitch, yaw] in m and rad"
    )


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)
