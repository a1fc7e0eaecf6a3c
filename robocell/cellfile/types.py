"""Value types and small sections of the cell file: numbers with units, poses, colours.

Every number goes through :class:`Num`, which rejects text, booleans, NaN and
infinities and checks its range, so an error always says the value, the
allowed range and the unit (``-0.1 is not allowed: must be > 0 kg``).
Fixed-length lists go through :class:`Shape` first, so ``[0.1, 0.2]`` for a
position is one clear message rather than a missing third item.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_serializer, model_validator
from spatialmath import SE3

from robocell.cellfile.errors import Loc, problem, problems, show


class Spec(BaseModel):
    """Base of every cell-file section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- numbers and lists ---------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    """A finite number (not a bool, not text) in a range, with its unit for messages."""

    unit: str = ""
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False

    def bounds(self) -> str:
        """The allowed range with its unit: ``> 0 and <= 50 kg`` (or ``in m`` without bounds)."""
        parts = [f"{op} {_g(b)}" for op, b in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
                 if b is not None]
        unit = f" {self.unit}" if self.unit else ""
        if not parts:
            return f"in{unit}" if unit else ""
        return " and ".join(parts) + unit

    def __call__(self, v: Any) -> float | int:
        kind = "a whole number" if self.integer else "a finite number"
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise problem(f"{show(v)} is not allowed: must be {kind} {self.bounds()}".rstrip())
        x = float(v)
        if self.integer and not x.is_integer():
            raise problem(f"{show(v)} is not allowed: must be {kind} {self.bounds()}".rstrip())
        bad = ((self.gt is not None and not x > self.gt) or (self.ge is not None and not x >= self.ge)
               or (self.lt is not None and not x < self.lt) or (self.le is not None and not x <= self.le))
        if bad:
            raise problem(f"{show(v)} is not allowed: must be {self.bounds()}")
        return int(x) if self.integer else x


def _g(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Shape:
    """A list of ``n`` items (any length >= 1 when n is None), checked before its items."""

    n: int | None
    what: str  # e.g. "[x, y, z] in m"

    def __call__(self, v: Any) -> Any:
        if not isinstance(v, list | tuple) or (self.n is not None and len(v) != self.n) or len(v) == 0:
            count = f"{self.n} numbers" if self.n is not None else "a list"
            raise problem(f"{show(v)} is not allowed: must be {count} {self.what}".rstrip())
        return v


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise problem(f"{show(v)} is not allowed: must be non-empty text")
    return v.strip()


_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


def _identifier(v: Any) -> str:
    if not isinstance(v, str) or not _IDENT.match(v):
        raise problem(
            f"{show(v)} is not allowed: a name must be lower-case letters, digits and _, "
            "starting with a letter (^[a-z][a-z0-9_]*$)"
        )
    return v


def _names(v: Any) -> Any:
    if not isinstance(v, list | tuple) or not v:
        raise problem(f"{show(v)} is not allowed: must be a non-empty list of names")
    return v


def choice(*allowed: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in allowed:
            raise problem(f"{show(v)} is not allowed: must be one of {', '.join(allowed)}")
        return str(v)

    return check


def cell_path(kind: str) -> Callable[[Any, ValidationInfo], Path | None]:
    """A file named relative to the cell file's folder; must exist; stored absolute."""

    def check(v: Any, info: ValidationInfo) -> Path | None:
        if v is None:
            return None
        if not isinstance(v, str | Path) or not str(v).strip():
            raise problem(f"{show(v)} is not allowed: must be the path of a {kind} file")
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        p = Path(v).expanduser()
        full = (p if p.is_absolute() else base / p).resolve()
        if not full.is_file():
            raise problem(f"{show(str(v))} is not allowed: the {kind} file {full} does not exist; "
                          f"give a path relative to the cell file's folder ({base})")
        return full

    return check



Text = Annotated[str, BeforeValidator(_text)]
Identifier = Annotated[str, BeforeValidator(_identifier)]
NameList = Annotated[tuple[Text, ...], BeforeValidator(_names)]
Metres = Annotated[float, BeforeValidator(Num("m"))]
Radians = Annotated[float, BeforeValidator(Num("rad"))]
Length = Annotated[float, BeforeValidator(Num("m", gt=0, lt=2))]  # sizes of things on a table
Vec2 = Annotated[tuple[Metres, Metres], BeforeValidator(Shape(2, "[x, y] in m"))]
Vec3 = Annotated[tuple[Metres, Metres, Metres], BeforeValidator(Shape(3, "[x, y, z] in m"))]
Rpy = Annotated[tuple[Radians, Radians, Radians], BeforeValidator(Shape(3, "[roll, pitch, yaw] in rad"))]
Size3 = Annotated[tuple[Length, Length, Length], BeforeValidator(Shape(3, "[x, y, z] in m"))]
MetreRange = Annotated[tuple[Metres, Metres], BeforeValidator(Shape(2, "[lo, hi] in m"))]
RadianRange = Annotated[tuple[Radians, Radians], BeforeValidator(Shape(2, "[lo, hi] in rad"))]


# ---- colours -----------------------------------------------------------------------------
#: Named colours (r, g, b) in 0..1; the names language grounding uses.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.10, 0.10),
    "green": (0.10, 0.65, 0.20),
    "blue": (0.10, 0.30, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "orange": (1.00, 0.50, 0.05),
    "purple": (0.50, 0.20, 0.70),
    "pink": (1.00, 0.50, 0.70),
    "cyan": (0.10, 0.80, 0.85),
    "brown": (0.45, 0.28, 0.12),
    "black": (0.05, 0.05, 0.05),
    "white": (0.95, 0.95, 0.95),
    "grey": (0.50, 0.50, 0.50),
    "wood": (0.72, 0.55, 0.36),
}
_ALIASES = {"gray": "grey"}


def nearest_color_name(rgb: tuple[float, float, float] | tuple[float, ...]) -> str:
    """The palette name closest (in RGB) to a colour."""
    c = np.asarray(rgb[:3], dtype=float)
    return min(PALETTE, key=lambda n: float(np.sum((np.asarray(PALETTE[n]) - c) ** 2)))


class ColorSpec(Spec):
    """A colour: RGBA in 0..1 and a palette name (the one given, or the nearest)."""

    rgba: tuple[float, float, float, float]
    name: str
    named: bool = False  # given by name in the file

    @classmethod
    def of(cls, name: str) -> ColorSpec:
        return cls(rgba=(*PALETTE[name], 1.0), name=name, named=True)

    @model_serializer
    def _dump(self) -> str | list[float]:
        return self.name if self.named else list(self.rgba)


def parse_color(v: Any) -> ColorSpec:
    """A palette name, or [r, g, b] / [r, g, b, a] with each in 0..1."""
    if isinstance(v, ColorSpec):
        return v
    allowed = f"a colour name ({', '.join([*PALETTE, *_ALIASES])}) or [r, g, b] / [r, g, b, a] with each in 0..1"
    if isinstance(v, str):
        key = _ALIASES.get(v.strip().lower(), v.strip().lower())
        if key not in PALETTE:
            raise problem(f"{show(v)} is not allowed: unknown colour; must be {allowed}")
        return ColorSpec.of(key)
    ok = isinstance(v, list | tuple) and len(v) in (3, 4) and all(
        isinstance(x, numbers.Real) and not isinstance(x, bool) and 0.0 <= float(x) <= 1.0 for x in v
    )
    if not ok:
        raise problem(f"{show(v)} is not allowed: must be {allowed}")
    r, g, b, a = [float(x) for x in v] + ([1.0] if len(v) == 3 else [])  # len(v) is 3 or 4: checked above
    rgba = (r, g, b, a)
    return ColorSpec(rgba=rgba, name=nearest_color_name(rgba), named=False)


Color = Annotated[ColorSpec, BeforeValidator(parse_color)]


# ---- poses and small sections -----------------------------------------------------------
class PoseSpec(Spec):
    """A pose: position ``xyz`` in m, then fixed-axis roll-pitch-yaw ``rpy`` in rad (as in URDF)."""

    xyz: Vec3 = (0.0, 0.0, 0.0)
    rpy: Rpy = (0.0, 0.0, 0.0)

    def se3(self) -> SE3:
        """The pose as a homogeneous transform: Trans(xyz) * Rz(yaw) * Ry(pitch) * Rx(roll)."""
        return SE3.Trans(self.xyz) * SE3.RPY(self.rpy, order="zyx")

    @classmethod
    def from_se3(cls, T: SE3) -> PoseSpec:
        t = np.asarray(T.t, dtype=float)
        r = np.asarray(T.rpy(order="zyx"), dtype=float)
        return cls(xyz=(float(t[0]), float(t[1]), float(t[2])), rpy=(float(r[0]), float(r[1]), float(r[2])))


def _ordered(pairs: list[tuple[str, tuple[float, float]]], strict: bool, unit: str) -> list[tuple[Loc, str]]:
    op = "<" if strict else "<="
    return [((name,), f"{show(list(v))} is not allowed: must be [lo, hi] with lo {op} hi ({unit})")
            for name, v in pairs if not (v[0] < v[1] if strict else v[0] <= v[1])]


class RegionSpec(Spec):
    """Uniform random offsets added to an object's pose: x, y in m (world), yaw in rad."""

    x: MetreRange = (0.0, 0.0)
    y: MetreRange = (0.0, 0.0)
    yaw: RadianRange = (0.0, 0.0)

    @model_validator(mode="after")
    def _check(self) -> RegionSpec:
        bad = _ordered([("x", self.x), ("y", self.y)], False, "m") + _ordered([("yaw", self.yaw)], False, "rad")
        if bad:
            raise problems(bad)
        return self


class SlotsSpec(Spec):
    """A tray's grid of slots: ``rows`` along the tray's y axis, ``cols`` along its x axis."""

    rows: Annotated[int, BeforeValidator(Num("", ge=1, le=50, integer=True))] = 1
    cols: Annotated[int, BeforeValidator(Num("", ge=1, le=50, integer=True))] = 1


class WorkspaceSpec(Spec):
    """Axis-aligned box in the world frame (m) the TCP must stay inside."""

    min: Vec3 = (-1.0, -1.0, -0.01)
    max: Vec3 = (1.0, 1.0, 1.2)

    @model_validator(mode="after")
    def _check(self) -> WorkspaceSpec:
        bad = [a for i, a in enumerate("xyz") if not self.min[i] < self.max[i]]
        if bad:
            raise problems([((), (f"min {show(list(self.min))} is not allowed with max {show(list(self.max))}: "
                                 f"min must be < max on every axis (fails on {', '.join(bad)}; m, world frame)"))])
        return self


class GripperSpec(Spec):
    """Parallel gripper settings: closing ``force`` in N per finger."""

    force: Annotated[float, BeforeValidator(Num("N", gt=0, le=200))] = 40.0


class Coloured:
    """``rgba`` and ``color_name`` of a spec with a ``color`` field (objects, fixtures, table)."""

    color: ColorSpec

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        return self.color.rgba

    @property
    def color_name(self) -> str:
        return self.color.name


class TableSpec(Coloured, Spec):
    """The table: a box whose TOP surface is the world plane z = 0."""

    size: Size3 = (1.2, 1.0, 0.05)
    center: Vec2 = (0.35, 0.0)
    color: Color = ColorSpec.of("wood")



Pixels = Annotated[int, BeforeValidator(Num("px", ge=16, le=4096, integer=True))]


class CameraSpec(Spec):
    """A pinhole camera at ``eye`` looking at ``target`` (world, m); ``fov`` is vertical, in degrees."""

    name: Identifier
    eye: Vec3
    target: Vec3
    up: Vec3 = (0.0, 0.0, 1.0)
    fov: Annotated[float, BeforeValidator(Num("deg", gt=0, lt=180))] = 60.0
    width: Pixels = 640
    height: Pixels = 480

    @model_validator(mode="after")
    def _check(self) -> CameraSpec:
        d = np.subtract(self.target, self.eye)
        if np.linalg.norm(d) < 1e-6:
            raise problems([(("target",), f"{show(list(self.target))} is not allowed: must differ from eye")])
        up = np.asarray(self.up, dtype=float)
        scale = float(np.linalg.norm(d) * np.linalg.norm(up))
        if scale < 1e-12 or float(np.linalg.norm(np.cross(d, up))) < 1e-6 * scale:
            raise problems([(("up",), (f"{show(list(self.up))} is not allowed: must not be zero or parallel "
                                      "to the viewing direction (target - eye)"))])
        return self


def default_camera(table_center: tuple[float, float]) -> dict[str, Any]:
    """The camera a cell gets when it names none: in front of the table, looking at it."""
    cx, cy = table_center
    return {"name": "front", "eye": [cx + 1.0, cy, 0.75], "target": [cx + 0.1, cy, 0.05]}
