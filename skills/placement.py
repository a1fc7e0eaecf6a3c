"""Where a placed object goes and what counts as placed there (world frame, SI units).

Shared by the built-in skills and by learned skills, so both refuse the same
targets before the arm moves (keep-out fixtures, occupied slots, a full tray,
an object that already carries another) and accept the same results after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spatialmath import SE3

from robocell.cellfile.spec import FixtureSpec, ObjectSpec
from robocell.errors import SkillFailed
from robocell.skills.context import SkillContext
from robocell.skills.geometry import floor_z, footprint_reach, lowest_z, slot_cell

RELEASE_GAP = 0.006  # m between the held object and its support at release
REST_TOL = 0.01  # m: an underside this close to a surface rests on it (sizes and sensing vary by a few mm)
SLOT_HEIGHT = 0.1  # m above (or below) a slot's floor within which an object occupies the slot


@dataclass(frozen=True)
class Goal:
    """Where the placed object's centre goes, and the region and support that count as placed."""

    label: str
    centre: np.ndarray  # where the held object's centre goes, world, m
    region_lo: np.ndarray  # accepted final centre region, in the region frame
    region_hi: np.ndarray
    frame: SE3  # region frame in world
    obj: ObjectSpec  # the object being placed
    support_z: float | None = None  # world height of the surface it must rest on (None: a frame or a pose)
    support: str = ""  # that surface, for messages
    pile: bool = False  # a bin: resting on another object that is itself in the bin also counts

    def contains(self, pose: SE3) -> bool:
        """Whether ``pose``'s centre lies in the accepted region."""
        local = (self.frame.inv() * np.asarray(pose.t, dtype=float).reshape(3, 1)).ravel()
        return bool(np.all(local >= self.region_lo) and np.all(local <= self.region_hi))

    def check(self, pose: SE3) -> tuple[bool, str]:
        """Whether an object at ``pose`` is placed: centre inside the region and, for a fixture, resting on its floor."""
        p = np.asarray(pose.t, dtype=float)
        local = (self.frame.inv() * p.reshape(3, 1)).ravel()
        if not (np.all(local >= self.region_lo) and np.all(local <= self.region_hi)):
            return False, (
                f"it rests at {np.round(p, 3).tolist()} m (world), i.e. {np.round(local, 3).tolist()} m "
                f"in the target frame; the accepted region is {np.round(self.region_lo, 3).tolist()} .. "
                f"{np.round(self.region_hi, 3).tolist()} m"
            )
        if self.support_z is not None:
            gap = lowest_z(self.obj, pose) - self.support_z
            if abs(gap) > REST_TOL:
                return False, (
                    f"its underside is {gap * 1000:.0f} mm {'above' if gap > 0 else 'below'} {self.support} "
                    f"(centre at {np.round(p, 3).tolist()} m); it must rest on that surface, within "
                    f"{REST_TOL * 1000:.0f} mm"
                )
        return True, ""


def placement(ctx: SkillContext, held: str, target: str | None, pose: SE3 | None, what: str = "place") -> Goal:
    """The goal for putting ``held`` in or on ``target`` (or at ``pose``), refusing targets it cannot go to.

    Call it before the arm moves: a keep-out fixture, an occupied slot, a full tray or an
    object that already carries another raise :class:`SkillFailed` naming what to do instead.
    """
    spec = ctx.cell.spec
    obj = spec.object(held)
    half = obj.half_height
    # a pose, or a named frame that is neither an object, a fixture nor a slot: put it there
    T = pose
    if T is None and target is not None and target not in ctx.names.objects \
            and target not in ctx.names.fixtures and target not in ctx.names.slots:
        T = ctx.cell.frame(target)
    if T is not None:
        tol = np.array([0.02, 0.02, 0.03])
        return Goal(target or "the pose", np.asarray(T.t, dtype=float), -tol, tol, SE3.Trans(T.t), obj)
    assert target is not None
    if target in ctx.names.objects:
        refuse_covered(ctx, target, held, what)
        base = ctx.cell.object_pose(target)
        ts = spec.object(target)
        top = base.t[2] + ts.half_height
        centre = np.array([base.t[0], base.t[1], top + half + RELEASE_GAP])
        # accepted: centred over the support within 40% of its footprint, resting on its top
        reach = 0.4 * min(ts.size[0], ts.size[1]) if ts.shape == "box" else 0.4 * ts.size[0]
        lo = np.array([-reach, -reach, ts.half_height + half - 0.01])
        hi = np.array([reach, reach, ts.half_height + half + 0.01])
        return Goal(f"the top of '{target}'", centre, lo, hi, SE3.Trans(base.t), obj)
    fx_name, _, slot = target.partition(".")
    refuse_keep_out(ctx, target, what)
    fx = spec.fixture(fx_name)
    if fx.type == "tray" and not slot and fx.slots is not None:
        target = free_slot(ctx, fx_name, held, what)
        slot = target.partition(".")[2]
    elif slot:
        refuse_occupied(ctx, target, held, what)
    T_fx = fx.pose.se3()
    z0 = floor_z(fx) - float(T_fx.t[2])  # floor height in the fixture frame
    if slot:
        T = fx.slot_poses()[target]
        hx, hy = slot_cell(fx)
        frame = SE3.Trans(T.t[0], T.t[1], T_fx.t[2]) * SE3.Rt(T_fx.R, [0, 0, 0])
        lo = np.array([-hx, -hy, z0 - 0.005])
        hi = np.array([hx, hy, z0 + 2 * half + 0.02])
        centre = np.array([T.t[0], T.t[1], floor_z(fx) + half + RELEASE_GAP])
        return Goal(f"slot '{target}'", centre, lo, hi, frame, obj, floor_z(fx), f"the floor of slot '{target}'")
    ix, iy, h = fx.size
    lo = np.array([-ix / 2, -iy / 2, z0 - 0.005])
    hi = np.array([ix / 2, iy / 2, z0 + h + 0.05])
    # Release a deep bin's load just below the rim rather than at the floor: the hand
    # is wider than the fingers and would hit the walls; the short drop is harmless.
    release = max(floor_z(fx) + half + RELEASE_GAP, floor_z(fx) + h - half)
    spot = free_spot(ctx, fx, held)
    centre = np.array([spot[0], spot[1], release])
    # Things dropped into a bin may land on what is already there: that is still in the bin.
    # A slot or a flat fixture holds one object on its floor; one on top of another is a stack.
    return Goal(f"'{fx_name}'", centre, lo, hi, T_fx, obj, floor_z(fx), f"the floor of '{fx_name}'",
                pile=fx.type == "bin")


def check_placed(ctx: SkillContext, goal: Goal, held: str, what: str) -> None:
    """SkillFailed unless ``held`` now satisfies ``goal``; names the object it lies on if it was stacked."""
    pose = ctx.cell.object_pose(held)
    ok, why = goal.check(pose)
    if ok:
        return
    below = supporting(ctx, held)
    if goal.pile and below is not None and goal.contains(pose) and goal.contains(ctx.cell.object_pose(below)):
        return
    if below is not None and goal.support_z is not None:
        why += f"; it lies on top of '{below}' (to put one object on another, use stack)"
    raise SkillFailed(f"{what}: '{held}' is not in {goal.label}: {why}")


def supporting(ctx: SkillContext, obj: str) -> str | None:
    """The object ``obj`` rests on, if any: one whose top is at ``obj``'s underside, beneath its centre."""
    spec = ctx.cell.spec
    pose = ctx.cell.object_pose(obj)
    bottom = lowest_z(spec.object(obj), pose)
    for other in ctx.names.objects:
        if other == obj:
            continue
        T = ctx.cell.object_pose(other)
        o = spec.object(other)
        top = float(T.t[2]) + (float(T.t[2]) - lowest_z(o, T))
        near = float(np.linalg.norm(np.asarray(T.t[:2]) - np.asarray(pose.t[:2]))) < footprint_reach(o)
        if near and abs(top - bottom) <= REST_TOL:
            return other
    return None


def refuse_covered(ctx: SkillContext, target: str, held: str, what: str) -> None:
    """SkillFailed when another object already rests on top of ``target``."""
    for other in ctx.names.objects:
        if other in (target, held, ctx.holding):
            continue
        if supporting(ctx, other) == target:
            raise SkillFailed(f"{what}: '{target}' already has '{other}' on top of it; put '{held}' on "
                              f"'{other}' instead, or move '{other}' away first")


def refuse_keep_out(ctx: SkillContext, target: str, what: str) -> None:
    """SkillFailed when ``target`` is an obstacle or a keep-out fixture (or a slot of one)."""
    if target not in ctx.names.fixtures and target not in ctx.names.slots:
        return
    spec = ctx.cell.spec
    fx = spec.fixture(target.partition(".")[0])
    if fx.is_obstacle or fx.keep_out:
        kind = "an obstacle" if fx.is_obstacle else "a keep-out fixture"
        places = [f.name for f in spec.fixtures if not (f.is_obstacle or f.keep_out)]
        raise SkillFailed(f"{what}: '{fx.name}' is {kind}: nothing may be placed in or on it, nor touch it; "
                          f"place into {', '.join(places) or 'another target'} instead")


def free_spot(ctx: SkillContext, fx: FixtureSpec, held: str) -> np.ndarray:
    """The centre or a quadrant of a fixture farthest from what already lies in it (world x, y)."""
    T = fx.pose.se3()
    ix, iy = fx.size[0], fx.size[1]
    spots = [T * np.array([dx, dy, 0.0]) for dx, dy in
             [(0, 0), (ix / 4, iy / 4), (-ix / 4, iy / 4), (ix / 4, -iy / 4), (-ix / 4, -iy / 4)]]
    inside = [ctx.cell.object_pose(o).t[:2] for o in ctx.names.objects
              if o not in (held, ctx.holding) and fx.contains(ctx.cell.object_pose(o).t)]
    if not inside:
        return np.asarray(spots[0]).ravel()[:2]
    return max((np.asarray(s).ravel()[:2] for s in spots),
               key=lambda s: min(float(np.linalg.norm(s - p)) for p in inside))


def occupant(ctx: SkillContext, slot: str, held: str) -> str | None:
    """The object (other than ``held``) whose centre lies in ``slot``'s cell, on or above its floor."""
    fx = ctx.cell.spec.fixture(slot.partition(".")[0])
    T = fx.slot_poses()[slot]
    hx, hy = slot_cell(fx)
    for obj in ctx.names.objects:
        if obj in (held, ctx.holding):
            continue
        d = (T.inv() * ctx.cell.object_pose(obj).t.reshape(3, 1)).ravel()
        if abs(d[0]) < hx and abs(d[1]) < hy and abs(d[2]) < SLOT_HEIGHT:
            return obj
    return None


def free_slots(ctx: SkillContext, tray: str, held: str) -> list[str]:
    """The slots of ``tray`` that nothing but ``held`` occupies, in slot order."""
    return [s for s in ctx.cell.spec.fixture(tray).slot_poses() if occupant(ctx, s, held) is None]


def free_slot(ctx: SkillContext, tray: str, held: str, what: str = "place") -> str:
    """The first free slot of ``tray``; SkillFailed naming each slot's occupant when none is free."""
    free = free_slots(ctx, tray, held)
    if free:
        return free[0]
    taken = ", ".join(f"{s} ('{occupant(ctx, s, held)}')" for s in ctx.cell.spec.fixture(tray).slot_poses())
    raise SkillFailed(f"{what}: every slot of '{tray}' is occupied: {taken}; empty a slot first, "
                      "or place into another target")


def refuse_occupied(ctx: SkillContext, slot: str, held: str, what: str) -> None:
    """SkillFailed when another object already sits in ``slot``, naming it and the free slots."""
    occ = occupant(ctx, slot, held)
    if occ is None:
        return
    tray = slot.partition(".")[0]
    free = free_slots(ctx, tray, held)
    if free:
        instead = (f"name a free slot ({', '.join(free)}) or give '{tray}' to use the first free one, "
                   f"or move '{occ}' out first")
    else:
        instead = f"every slot of '{tray}' is occupied: empty one first, or place into another target"
    raise SkillFailed(f"{what}: slot '{slot}' is occupied by '{occ}'; {instead}")
