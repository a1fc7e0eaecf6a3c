"""Where things may stand in a cell: on the table, above its top, where an arm may work.

Checked with the cell file's own notions, nothing invented:

- the table's footprint (``table.center`` +- ``table.size / 2`` in x and y): an
  object or fixture beside it has nothing to stand on;
- the table top, world z = 0: nothing may start below it (an object's underside,
  a fixture's pose, which is the centre of its underside), give or take
  :data:`Z_TOLERANCE`;
- the arms' ``safety.workspace`` boxes (x, y): the TCP never leaves them, so an
  object, bin or tray outside all of them can never be picked or placed into.
  Obstacles are exempt: they exist to be avoided, wherever they stand.

A ``randomize`` region counts at both its ends: every draw must be a valid
place too, not just the nominal pose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robocell.cellfile.errors import Loc, show

if TYPE_CHECKING:
    from collections.abc import Sequence

    from robocell.cellfile.spec import CellSpec, FixtureSpec

Z_TOLERANCE = 0.001  # m: how far below the table top an underside may start (rounding in hand-written files)


def placement_problems(spec: CellSpec) -> list[tuple[Loc, str]]:
    """(path, message) for every object or fixture that stands off the table, below it, or out of reach."""
    from robocell.cellfile.spec import ObjectSpec  # at call time: cellfile imports this module

    bad: list[tuple[Loc, str]] = []
    groups: tuple[tuple[str, Sequence[ObjectSpec | FixtureSpec]], ...] = (
        ("objects", spec.objects), ("fixtures", spec.fixtures))
    boxes = [(a.name, a.safety.workspace.min, a.safety.workspace.max) for a in spec.arms]
    for kind, entries in groups:
        for i, e in enumerate(entries):
            x, y, z = e.pose.xyz
            # a mesh object, like a fixture, stands on its pose; a box or cylinder on its underside
            bottom = z - e.half_height if isinstance(e, ObjectSpec) and e.shape != "mesh" else z
            if bottom < -Z_TOLERANCE:
                under = "its underside" if bottom != z else "its pose"
                bad.append(((kind, i, "pose"), (
                    f"{show(list(e.pose.xyz))} is not allowed: {under} is at z = {bottom:.3f} m, "
                    f"{-bottom:.3f} m below the table top (z = 0); "
                    + (f"a resting {e.shape} of this size has z = {e.half_height:g} m"
                       if isinstance(e, ObjectSpec) and bottom != z
                       else "a fixture stands on its pose: z = 0 on the table"))))
            bad += _footprint_problems(spec, kind, i, e, boxes)
    return bad


def _footprint_problems(spec: CellSpec, kind: str, i: int, e: Any,
                        boxes: list[tuple[str, Any, Any]]) -> list[tuple[Loc, str]]:
    """The pose first; then, if that is fine, both ends of the randomize region."""
    x, y, _ = e.pose.xyz
    what = f"{kind[:-1]} '{e.name}'"
    candidates: list[tuple[Loc, str, tuple[float, float], tuple[float, float]]] = [
        ((kind, i, "pose"), show(list(e.pose.xyz)), (x, x), (y, y))]
    r = e.randomize
    if r is not None and (r.x != (0.0, 0.0) or r.y != (0.0, 0.0)):
        candidates.append(((kind, i, "randomize"), show(r.model_dump()), (x + r.x[0], x + r.x[1]),
                           (y + r.y[0], y + r.y[1])))
    for where, shown, xs, ys in candidates:
        at = _at(what, x, y, xs, ys)
        if spec.table is not None:
            limit = _table_box(spec.table)
            if not _inside(xs, ys, limit):
                return [(where, (f"{shown} is not allowed: {at} off the table ({_box_text(limit)}); "
                                 "move it onto the table, or make the table larger"))]
        if kind == "fixtures" and e.is_obstacle:
            continue
        if not any(_inside(xs, ys, (lo[0], hi[0], lo[1], hi[1])) for _, lo, hi in boxes):
            reach = "; ".join(f"{n}: {_box_text((lo[0], hi[0], lo[1], hi[1]))}" for n, lo, hi in boxes)
            return [(where, (f"{shown} is not allowed: {at} outside every arm's safety.workspace ({reach}), "
                             "so no arm could reach it; move it inside, or widen the arm's workspace"))]
    return []


def _at(what: str, x: float, y: float, xs: tuple[float, float], ys: tuple[float, float]) -> str:
    if xs == (x, x) and ys == (y, y):
        return f"{what} at ({x:.3f}, {y:.3f}) m is"
    return (f"{what} may be placed anywhere in x {xs[0]:.3f}..{xs[1]:.3f} m, y {ys[0]:.3f}..{ys[1]:.3f} m "
            "(pose + randomize), which reaches")


def _table_box(table: Any) -> tuple[float, float, float, float]:
    (cx, cy), (sx, sy, _) = table.center, table.size
    return cx - sx / 2, cx + sx / 2, cy - sy / 2, cy + sy / 2


def _inside(xs: tuple[float, float], ys: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    x0, x1, y0, y1 = box
    return x0 <= xs[0] and xs[1] <= x1 and y0 <= ys[0] and ys[1] <= y1


def _box_text(box: tuple[float, float, float, float]) -> str:
    x0, x1, y0, y1 = box
    return f"x {x0:.2f}..{x1:.2f} m, y {y0:.2f}..{y1:.2f} m"


__all__ = ["Z_TOLERANCE", "placement_problems"]
