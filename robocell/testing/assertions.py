"""Assertions about a cell's world, in the words an engineer would use.

    from robocell.testing import assert_in, assert_gripper_empty

    assert_in(cell, "red_block", "bin")      # "this object is in the bin"
    assert_gripper_empty(cell)               # "the gripper holds nothing"

A failed assertion says what was expected and where everything actually is::

    AssertionError: expected red_block in bin, but red_block is on the table at (0.452, -0.248, 0.020) m,
    0.55 m from bin
    world: red_block on the table at (0.452, -0.248, 0.020) m; green_block in bin; ...;
    panda's gripper holds nothing (open, 80 mm)

They work on any backend whose cell knows object poses (simulation reads
them from physics; hardware from the cell file or a perception source).

:func:`check_backend` (from robocell/testing/backend_check.py) runs the Arm and Gripper
conformance checks on a backend or a served driver: one ContractViolation per broken promise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from robocell.testing.backend_check import check_backend

if TYPE_CHECKING:
    from robocell.core.cell import Cell

__all__ = [
    "assert_gripper_empty", "assert_holding", "assert_in", "assert_in_bin", "assert_near", "assert_not_in",
    "assert_on", "assert_on_table", "check_backend", "describe_world", "where_is",
]

ON_TABLE_Z = 0.01  # m: an object whose underside is within this of z = 0 rests on the table
STACK_Z = 0.01  # m: tolerance on the height of an object resting on another


def _xyz(p: np.ndarray) -> str:
    return f"({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) m"


def _holder(cell: Cell, obj: str) -> str | None:
    for arm in cell.spec.arms:
        if cell.held_object(arm.name) == obj:
            return arm.name
    return None


def _resting_on(cell: Cell, obj: str) -> str | None:
    """The object ``obj`` rests on, if any (centre above its top face, heights matching)."""
    spec = cell.spec.object(obj)
    p = cell.object_pose(obj).t
    for other in cell.objects:
        if other == obj:
            continue
        os_ = cell.spec.object(other)
        q = cell.object_pose(other).t
        reach = 0.5 * (min(os_.size[0], os_.size[1]) if os_.shape == "box" else 2 * os_.size[0])
        dz = p[2] - q[2] - (os_.half_height + spec.half_height)
        if np.linalg.norm(p[:2] - q[:2]) <= reach and abs(dz) <= STACK_Z:
            return other
    return None


def where_is(cell: Cell, obj: str) -> str:
    """Where an object is, as a phrase: ``in bin``, ``held by panda``, ``on blue_block``, ``on the table at …``."""
    p = cell.object_pose(obj).t
    holder = _holder(cell, obj)
    if holder is not None:
        return f"held by {holder} at {_xyz(p)}"
    for fx in cell.spec.fixtures:
        if fx.contains(p):
            if fx.slots is not None:  # a tray's grid of slots; a bin has none
                half_pitch = 0.5 * min(fx.size[0] / fx.slots.cols, fx.size[1] / fx.slots.rows)
                for slot, T in fx.slot_poses().items():
                    if np.linalg.norm(T.t[:2] - p[:2]) <= half_pitch:
                        return f"in {slot}"
            return f"in {fx.name}"
    below = _resting_on(cell, obj)
    if below is not None:
        return f"on {below} at {_xyz(p)}"
    half = cell.spec.object(obj).half_height
    if p[2] < -0.05:
        return f"off the table (fallen, at {_xyz(p)})"
    if abs(p[2] - half) <= ON_TABLE_Z:
        return f"on the table at {_xyz(p)}"
    return f"at {_xyz(p)}"


def _gripper_text(cell: Cell, arm: str) -> str:
    held = cell.held_object(arm)
    width = cell.gripper(arm).width() * 1000
    if held is not None:
        return f"{arm}'s gripper holds {held} ({width:.0f} mm)"
    state = "closed" if cell.gripper(arm).grasped() or width < 5 else "open"
    return f"{arm}'s gripper holds nothing ({state}, {width:.0f} mm)"


def describe_world(cell: Cell) -> str:
    """Every object and gripper in one line: what a failed assertion prints."""
    parts = [f"{o} {where_is(cell, o)}" for o in cell.objects]
    parts += [_gripper_text(cell, a.name) for a in cell.spec.arms]
    return "world: " + "; ".join(parts)


def _fail(expected: str, cell: Cell, actual: str) -> AssertionError:
    return AssertionError(f"expected {expected}, but {actual}\n{describe_world(cell)}")


def assert_in(cell: Cell, obj: str, fixture: str) -> None:
    """The object lies inside the fixture (a bin, a tray, or one tray slot such as ``tray.slot2``)."""
    p = cell.object_pose(obj).t
    name, _, _ = fixture.partition(".")
    fx = cell.spec.fixture(name)
    if fx.is_obstacle:
        from robocell.errors import ConfigError

        raise ConfigError(f"assert_in: '{name}' is an obstacle (a solid box): nothing can be in it; "
                          "name a bin, a tray or a tray slot")
    inside = fx.contains(p)
    if inside and fixture != name:
        inside = where_is(cell, obj) == f"in {fixture}"
    if not inside:
        target = cell.frame(fixture).t
        raise _fail(f"{obj} in {fixture}", cell,
                    f"{obj} is {where_is(cell, obj)}, {np.linalg.norm(p[:2] - target[:2]):.2f} m from {fixture}")


assert_in_bin = assert_in


def assert_not_in(cell: Cell, obj: str, fixture: str) -> None:
    """The object is not inside the fixture."""
    if cell.spec.fixture(fixture.partition(".")[0]).contains(cell.object_pose(obj).t):
        raise _fail(f"{obj} not in {fixture}", cell, f"{obj} is {where_is(cell, obj)}")


def assert_on(cell: Cell, obj: str, support: str) -> None:
    """The object rests on top of another object (stacked)."""
    if _resting_on(cell, obj) != support:
        raise _fail(f"{obj} on {support}", cell, f"{obj} is {where_is(cell, obj)}")


def assert_on_table(cell: Cell, obj: str) -> None:
    """The object rests on the table top (not in a fixture, not stacked, not held)."""
    where = where_is(cell, obj)
    if not where.startswith("on the table"):
        raise _fail(f"{obj} on the table", cell, f"{obj} is {where}")


def assert_holding(cell: Cell, obj: str, arm: str | None = None) -> None:
    """The arm's gripper holds the object."""
    name = cell.arm(arm).name
    held = cell.held_object(name)
    if held != obj:
        actual = f"{name}'s gripper holds {held}" if held else f"{name}'s gripper holds nothing"
        raise _fail(f"{name} holding {obj}", cell, f"{actual}; {obj} is {where_is(cell, obj)}")


def assert_gripper_empty(cell: Cell, arm: str | None = None) -> None:
    """The arm's gripper holds nothing."""
    name = cell.arm(arm).name
    held = cell.held_object(name)
    if held is not None:
        raise _fail(f"{name}'s gripper empty", cell, f"it holds {held}")


def assert_near(cell: Cell, obj: str, frame: str, tolerance: float = 0.01) -> None:
    """The object's centre is within ``tolerance`` (m) of a named frame's origin."""
    d = float(np.linalg.norm(cell.object_pose(obj).t - cell.frame(frame).t))
    if d > tolerance:
        raise _fail(f"{obj} within {tolerance * 1000:.0f} mm of {frame}", cell,
                    f"it is {d * 1000:.0f} mm away, {where_is(cell, obj)}")
