"""The cell file: a validated YAML description of one robot cell.

A cell file names the table, the arms (built-in model or custom URDF, base
pose, home, gripper, safety envelope), the objects on the table, fixtures
(bins, trays with slots), named frames and cameras.  It is the static half
of a cell; the running world (simulated or real) holds the state.

Conventions (see ``docs/cell-format.md``): SI units (m, rad, s, kg, N);
world z = 0 is the table top; object poses are the poses of their centres;
``rpy`` is fixed-axis roll-pitch-yaw exactly as in URDF.

    spec = load_cell_spec("examples/cells/tabletop.yaml")
    spec.arm("panda").arm_model().dof   # 7
    spec.fixture("tray").slot_poses()   # {"tray.slot1": SE3, ...}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import BeforeValidator, PrivateAttr, ValidationError, model_validator
from spatialmath import SE3

from robocell.cellfile.arm import ArmSpec, SafetySpec
from robocell.cellfile.placement import placement_problems
from robocell.cellfile.errors import Loc, format_errors, format_problems, problem, problems, read_yaml, show
from robocell.cellfile.types import (
    Coloured,
    PALETTE,
    CameraSpec,
    Color,
    ColorSpec,
    GripperSpec,
    Identifier,
    Length,
    Num,
    PoseSpec,
    RegionSpec,
    Shape,
    Size3,
    SlotsSpec,
    Spec,
    TableSpec,
    Text,
    WorkspaceSpec,
    cell_path,
    choice,
    default_camera,
    nearest_color_name,
)
from robocell.errors import CellFileError, ConfigError
from robocell.cellfile.randomization import RandomizationSpec, object_problems

__all__ = [
    "PALETTE", "ArmSpec", "CameraSpec", "CellSpec", "ColorSpec", "FixtureSpec", "FrameSpec", "GripperSpec",
    "ObjectSpec", "PoseSpec", "RegionSpec", "SafetySpec", "SlotsSpec", "TableSpec", "WorkspaceSpec",
    "describe", "load_cell_spec", "nearest_color_name", "parse_cell_spec",
]


# ---- field validators -----------------------------------------------------------------
def _entries(what: str, required: bool = False) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v is None and not required:
            return ()
        if not isinstance(v, list | tuple):
            raise problem(f"{show(v)} is not allowed: must be a list of {what}, each starting with '- name: ...'")
        if required and not v:
            raise problem(f"{show(v)} is not allowed: a cell needs at least one {what[:-1]}")
        return v

    return check


def _version(v: Any) -> int:
    if isinstance(v, bool) or v != 1:
        raise problem(f"{show(v)} is not allowed: must be 1 (the only cell-file version this robocell reads)")
    return 1


# ---- things in the cell -----------------------------------------------------------------
_SIZE_RULES = {"box": (3, "[x, y, z] full extents in m"), "cylinder": (2, "[radius, height] in m"),
               "mesh": (3, "[sx, sy, sz] scale factors")}


class ObjectSpec(Coloured, Spec):
    """A movable rigid object; ``pose`` is the pose of its centre in the world."""

    name: Identifier
    shape: Annotated[Literal["box", "cylinder", "mesh"], BeforeValidator(choice("box", "cylinder", "mesh"))]
    size: Annotated[tuple[Length, ...], BeforeValidator(Shape(None, "of sizes in m"))]
    mesh: Annotated[Path | None, BeforeValidator(cell_path("mesh"))] = None
    mass: Annotated[float, BeforeValidator(Num("kg", gt=0, le=50))] = 0.1
    color: Color = ColorSpec.of("grey")
    friction: Annotated[float, BeforeValidator(Num("(friction coefficient)", ge=0))] = 1.0
    pose: PoseSpec
    randomize: RegionSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> ObjectSpec:
        bad: list[tuple[Loc, str]] = []
        n, what = _SIZE_RULES[self.shape]
        if len(self.size) != n:
            bad.append((("size",), f"{show(list(self.size))} is not allowed: a {self.shape} needs {n} numbers {what}"))
        if self.shape == "mesh" and self.mesh is None:
            bad.append((("mesh",), ("missing: a mesh object needs 'mesh', the path of its mesh file "
                                   "(relative to the cell file's folder)")))
        if self.shape != "mesh" and self.mesh is not None:
            bad.append((("mesh",), (f"{show(str(self.mesh))} is not allowed: only shape 'mesh' takes a mesh file; "
                                   f"this object is a {self.shape}")))
        if bad:
            raise problems(bad)
        return self


    @property
    def half_height(self) -> float:
        """Half the object's height (m): box z/2, cylinder height/2, mesh scale z/2 (an estimate)."""
        return float(self.size[1] if self.shape == "cylinder" else self.size[2]) / 2


FIXTURE_TYPES = ("bin", "tray", "obstacle")


def _flag(v: Any) -> bool:
    # YAML's true/false only: "yes" or 1 for a safety switch is more likely a slip than intent
    if not isinstance(v, bool):
        raise problem(f"{show(v)} is not allowed: must be true or false")
    return v


class FixtureSpec(Coloured, Spec):
    """A static fixture: an open ``bin``, a shallow ``tray`` (optionally with slots), or a solid ``obstacle``.

    A fixture stands on its ``pose``: the pose is the centre of its underside.
    A bin's or tray's inner floor is ``wall`` above it; an obstacle is one solid
    box of ``size`` [x, y, height].  ``keep_out`` fixtures must not be touched by
    anything (arm, gripper, objects): in simulation a touch latches a protective
    stop.  ``randomize`` moves the fixture per seeded trial, and the program sees
    the moved pose (see :func:`robocell.cellfile.randomization.place_fixtures`).
    """

    name: Identifier
    type: Annotated[Literal["bin", "tray", "obstacle"], BeforeValidator(choice(*FIXTURE_TYPES))]
    pose: PoseSpec
    size: Annotated[Size3, BeforeValidator(Shape(3, "[x, y, height] in m (bin, tray: inner x, inner y, "
                                                    "wall height; obstacle: full extents)"))]
    wall: Annotated[float, BeforeValidator(Num("m", gt=0, lt=0.2))] = 0.01
    color: Color = ColorSpec.of("grey")
    slots: SlotsSpec | None = None
    keep_out: Annotated[bool, BeforeValidator(_flag)] = False  # default true for obstacles (see _defaults)
    randomize: RegionSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        # an obstacle exists to be avoided: keep-out unless the file says otherwise
        if isinstance(data, dict) and "keep_out" not in data and data.get("type") == "obstacle":
            data = {**data, "keep_out": True}
        return data

    @model_validator(mode="after")
    def _check(self) -> FixtureSpec:
        bad: list[tuple[Loc, str]] = []
        if self.slots is not None and self.type != "tray":
            bad.append((("slots",), (f"{show(self.slots)} is not allowed: only a tray has slots; "
                                    f"'{self.name}' is {'an' if self.is_obstacle else 'a'} {self.type}")))
        if self.type == "obstacle" and "wall" in self.model_fields_set:
            bad.append((("wall",), (f"{show(self.wall)} is not allowed: an obstacle is a solid box and has no "
                                   "walls; remove 'wall' (an obstacle's size is [x, y, height], full extents in m)")))
        if bad:
            raise problems(bad)
        return self

    @property
    def is_obstacle(self) -> bool:
        return self.type == "obstacle"

    def slot_poses(self) -> dict[str, SE3]:
        """World poses of the slot centres on the inner floor, ``<name>.slot1`` .. row-major.

        Rows run along the fixture's y axis (row 1 at -y), columns along x (column 1 at -x).
        """
        if self.slots is None:
            return {}
        T = self.pose.se3()
        ix, iy, _ = self.size
        rows, cols = self.slots.rows, self.slots.cols
        out: dict[str, SE3] = {}
        for r in range(rows):
            for c in range(cols):
                x = -ix / 2 + (c + 0.5) * ix / cols
                y = -iy / 2 + (r + 0.5) * iy / rows
                out[f"{self.name}.slot{r * cols + c + 1}"] = T * SE3.Trans(x, y, self.wall)
        return out

    def contains(self, point_world: Any, margin: float = 0.0) -> bool:
        """Whether a world point lies in the fixture's inner volume (up to 5 cm above the walls).

        Always False for an obstacle: it is solid, nothing can be in it.
        """
        if self.is_obstacle:
            return False
        p = np.asarray(point_world.t if isinstance(point_world, SE3) else point_world, dtype=float).reshape(3)
        local = (self.pose.se3().inv() * p.reshape(3, 1)).ravel()
        ix, iy, h = self.size
        z = local[2] - self.wall  # height above the inner floor
        return bool(abs(local[0]) <= ix / 2 - margin and abs(local[1]) <= iy / 2 - margin and -0.01 <= z <= h + 0.05)


class FrameSpec(Spec):
    """A named frame: ``pose`` relative to ``parent`` (world, an arm's base, an object or a fixture)."""

    name: Identifier
    pose: PoseSpec = PoseSpec()
    parent: Text = "world"


# ---- the whole cell ---------------------------------------------------------------------
_KINDS = ("arms", "objects", "fixtures", "frames", "cameras")
RESERVED_NAMES = ("world", "table")


def cross_problems(names: dict[str, list[Any]], parents: list[Any]) -> list[tuple[Loc, str]]:
    """Unique and reserved names, and frame parents that exist.

    Works on plain values so it can also run on a file whose other fields fail
    validation (then every problem is still reported in one go).
    """
    bad: list[tuple[Loc, str]] = []
    owner: dict[str, str] = {}
    for kind in _KINDS:
        for i, name in enumerate(names.get(kind, [])):
            if not isinstance(name, str):
                continue
            if name in RESERVED_NAMES:
                bad.append(((kind, i, "name"), (f"{show(name)} is not allowed: "
                                               f"{', '.join(RESERVED_NAMES)} are reserved names")))
            elif name in owner:
                bad.append(((kind, i, "name"), (f"{show(name)} is not allowed: {owner[name]} already has this "
                                               "name; names must be unique across arms, objects, fixtures, "
                                               "frames and cameras")))
            else:
                owner[name] = f"{kind}[{i}]"
    known = ["world"] + [n for kind in ("arms", "objects", "fixtures") for n in names.get(kind, [])
                         if isinstance(n, str)]
    for i, parent in enumerate(parents):
        if isinstance(parent, str) and parent not in known:
            bad.append((("frames", i, "parent"), (f"{show(parent)} is not allowed: unknown parent; "
                                                 f"a frame's parent is one of: {', '.join(known)}")))
    return bad


def _raw_cross_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """:func:`cross_problems` on the raw YAML data (best effort, for files that fail elsewhere)."""

    def entries(kind: str) -> list[Any]:
        v = data.get(kind)
        return [e if isinstance(e, dict) else {} for e in v] if isinstance(v, list) else []

    names = {kind: [e.get("name") for e in entries(kind)] for kind in _KINDS}
    return cross_problems(names, [e.get("parent", "world") for e in entries("frames")])


class CellSpec(Spec):
    """A validated cell file.

    Frozen: a per-trial variant (moved fixtures, scaled physics) is a copy made
    with :meth:`replace`, which keeps the folder relative paths resolve against.
    """

    version: Annotated[int, BeforeValidator(_version)]
    name: Text
    table: TableSpec | None = TableSpec()
    arms: Annotated[tuple[ArmSpec, ...], BeforeValidator(_entries("arms", required=True))]
    objects: Annotated[tuple[ObjectSpec, ...], BeforeValidator(_entries("objects"))] = ()
    fixtures: Annotated[tuple[FixtureSpec, ...], BeforeValidator(_entries("fixtures"))] = ()
    frames: Annotated[tuple[FrameSpec, ...], BeforeValidator(_entries("frames"))] = ()
    cameras: Annotated[tuple[CameraSpec, ...], BeforeValidator(_entries("cameras"))] = ()
    randomization: RandomizationSpec | None = None  # physics, sensor noise, link faults per trial
    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _default_camera(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("cameras"):
            table = data.get("table")
            center = table.get("center") if isinstance(table, dict) else None
            ok = isinstance(center, list) and len(center) == 2 and all(isinstance(c, int | float) for c in center)
            xy = (float(center[0]), float(center[1])) if ok and center is not None else (0.35, 0.0)
            data = {**data, "cameras": [default_camera(xy)]}
        return data

    @model_validator(mode="after")
    def _check(self) -> CellSpec:
        names = {kind: [e.name for e in getattr(self, kind)] for kind in _KINDS}
        bad = cross_problems(names, [f.parent for f in self.frames])
        bad += object_problems(self.randomization, names["objects"])
        bad += placement_problems(self)
        if bad:
            raise problems(bad)
        return self

    def replace(self, **fields: Any) -> CellSpec:
        """A copy with some top-level fields replaced (not re-validated; the values come from this spec)."""
        out = self.model_copy(update=fields)
        out._base_dir = self._base_dir
        return out

    @property
    def base_dir(self) -> Path | None:
        """Folder the cell file was read from (relative paths resolve against it)."""
        return self._base_dir

    def names(self) -> list[str]:
        """Every entity name: arms, objects, fixtures, frames, cameras."""
        return [e.name for kind in _KINDS for e in getattr(self, kind)]

    def arm(self, name: str) -> ArmSpec:
        """The arm called ``name`` (ConfigError listing the arms otherwise)."""
        return _find(self.arms, name, "arm")

    def object(self, name: str) -> ObjectSpec:
        """The object called ``name`` (ConfigError listing the objects otherwise)."""
        return _find(self.objects, name, "object")

    def fixture(self, name: str) -> FixtureSpec:
        """The fixture called ``name`` (ConfigError listing the fixtures otherwise)."""
        return _find(self.fixtures, name, "fixture")


_E = TypeVar("_E", ArmSpec, ObjectSpec, FixtureSpec)


def _find(entries: tuple[_E, ...], name: str, kind: str) -> _E:
    for e in entries:
        if e.name == name:
            return e
    known = ", ".join(e.name for e in entries) or "(none)"
    raise ConfigError(f"unknown {kind} {name!r}; the cell's {kind}s are: {known}")


# ---- loading ------------------------------------------------------------------------------
def parse_cell_spec(data: Any, source: str = "<cell>", base_dir: Path | None = None) -> CellSpec:
    """Validate an already-parsed cell file; every problem is listed in one CellFileError."""
    if not isinstance(data, dict):
        found = "nothing (the file is empty)" if data is None else f"{show(data, 60)} ({type(data).__name__})"
        raise CellFileError(f"cell file {source} is invalid: the top level must be a mapping of fields "
                            f"(version: 1, name: ..., arms: [...], ...); found {found}")
    try:
        spec = CellSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        lines = format_errors(exc, CellSpec)
        lines += [line for line in format_problems(_raw_cross_problems(data)) if line not in lines]
        raise CellFileError(f"cell file {source} is invalid:\n  " + "\n  ".join(lines)) from None
    spec._base_dir = base_dir
    return spec


def load_cell_spec(path: str | Path) -> CellSpec:
    """Read and validate a cell file (YAML); raises CellFileError naming file, field, value and rule."""
    p = Path(path)
    data = read_yaml(p, str(path))
    return parse_cell_spec(data, source=str(path), base_dir=p.resolve().parent)


def describe(spec: CellSpec) -> str:
    """A human summary of a cell, for ``robocell cell check``."""
    from robocell.cellfile.description import describe as _describe

    return _describe(spec)
