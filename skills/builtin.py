"""Built-in skills. They use only the core Arm/Gripper/Cell contracts, so they run
unchanged in simulation and on hardware.  Each checks its preconditions and then
verifies the effect it promises, raising :class:`SkillFailed` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spatialmath import SE3

from robocell.cellfile import FixtureSpec
from robocell.errors import KinematicsError, MotionError, SafetyViolation, SkillFailed
from robocell.skills.binding import pose_from_value
from robocell.skills.context import SkillContext
from robocell.skills.geometry import floor_z, grasp_for, slot_cell, top_down, top_down_yaw
from robocell.skills.registry import FrameName, ObjectName, Pose, TargetName, skill

APPROACH = 0.10  # m above a grasp or place pose before the straight-line descent
LIFT = 0.12  # m lifted after a grasp
RELEASE_GAP = 0.006  # m between the held object and its support at release
SETTLE = 0.3  # s for a released object to come to rest before checking


@skill(examples=("go home", "return to the home position", "go back home", "park the arm", "home the robot"))
def home(ctx: SkillContext) -> None:
    """Move the arm to its home configuration (joint move)."""
    ctx.log("home")
    _move(ctx, lambda: ctx.arm.move_joints(ctx.home), "moving home")


@skill(examples=("move to above_bin", "go to the inspect pose", "move the arm to the pose", "go above the bin"))
def move_to(ctx: SkillContext, target: FrameName | None = None, pose: Pose | None = None,
            linear: bool = False) -> None:
    """Move the tool centre point to a named frame or to a pose [x, y, z, roll, pitch, yaw].

    Give exactly one of ``target`` or ``pose``; ``linear`` moves in a straight line.
    """
    if (target is None) == (pose is None):
        raise SkillFailed("move_to: give exactly one of 'target' (a frame name) or 'pose'")
    goal = ctx.cell.frame(target) if target is not None else pose_from_value(pose)
    ctx.log(f"move_to {target or 'pose'}")
    _move(ctx, lambda: ctx.arm.move_pose(goal, linear=linear), f"moving to {target or 'the pose'}")


@skill(examples=("open the gripper", "release", "open your hand", "let go"))
def open_gripper(ctx: SkillContext) -> None:
    """Open the gripper fully (releases anything held)."""
    ctx.gripper.open()
    ctx.holding = None


@skill(examples=("close the gripper", "grip", "shut the gripper"))
def close_gripper(ctx: SkillContext, force: float | None = None) -> None:
    """Close the gripper with ``force`` newtons per finger (default: the cell's gripper force)."""
    ctx.gripper.close(force)


@skill(examples=("pick up the red block", "grab the blue one", "take the green block", "lift the red block",
                  "fetch the red block", "get the blue block", "hold the green block", "grasp the blue block"))
def pick(ctx: SkillContext, object: ObjectName) -> None:
    """Pick an object from above: approach, descend, close on it, lift, and check it came along."""
    _require_empty(ctx, "pick")
    spec = ctx.cell.spec.object(object)
    start = ctx.cell.object_pose(object)
    grasp = grasp_for(spec, start, ctx.gripper.max_width, top_down_yaw(ctx.arm.state().tcp))
    if grasp is None:
        raise SkillFailed(
            f"pick: '{object}' ({spec.shape} {spec.size} m) is wider than the gripper opens "
            f"({ctx.gripper.max_width:.3f} m) on every side"
        )
    above = SE3.Trans(0, 0, APPROACH) * grasp.tcp
    ctx.log(f"pick {object}")
    ctx.gripper.open()
    _move(ctx, lambda: ctx.arm.move_pose(above), f"approaching '{object}'")
    _move(ctx, lambda: ctx.arm.move_pose(grasp.tcp, linear=True), f"descending onto '{object}'")
    ctx.gripper.close()
    if not ctx.gripper.grasped():
        _move(ctx, lambda: ctx.arm.move_pose(above, linear=True), "retreating after a missed grasp")
        raise SkillFailed(
            f"pick: the gripper closed on nothing at '{object}' (width {ctx.gripper.width() * 1000:.1f} mm); "
            "the object may have moved or its pose is wrong"
        )
    _move(ctx, lambda: ctx.arm.move_pose(SE3.Trans(0, 0, LIFT) * grasp.tcp, linear=True), f"lifting '{object}'")
    lifted = ctx.cell.object_pose(object).t[2] - start.t[2]
    if not ctx.gripper.grasped() or lifted < LIFT * 0.6:
        raise SkillFailed(
            f"pick: '{object}' did not come up with the gripper (rose {lifted * 1000:.0f} mm of "
            f"{LIFT * 1000:.0f} mm); it slipped or was not held"
        )
    ctx.holding = object


@skill(examples=("put it in the bin", "place it on the green block", "drop it into slot 2 of the tray",
                  "put it down in the tray", "release it into the bin", "set it down on the red block"))
def place(ctx: SkillContext, target: TargetName | None = None, pose: Pose | None = None) -> None:
    """Place the held object in or on a target: a fixture (bin, tray), a tray slot, another object, a frame, or a pose.

    Lowers the object onto its support, opens, retreats, and checks the object rests inside the target region.
    """
    if (target is None) == (pose is None):
        raise SkillFailed("place: give exactly one of 'target' or 'pose'")
    held = _require_holding(ctx, "place")
    goal = _placement(ctx, held, target, pose_from_value(pose) if pose is not None else None)
    ctx.log(f"place {held} -> {goal.label}")
    tcp = ctx.arm.state().tcp
    # carry the object's measured offset in the hand, so a grasp that is off-centre still lands on target
    offset = ctx.cell.object_pose(held).t - tcp.t
    place_tcp = top_down(goal.centre - offset, top_down_yaw(tcp))
    above = SE3.Trans(0, 0, APPROACH) * place_tcp
    _move(ctx, lambda: ctx.arm.move_pose(SE3.Trans(0, 0, APPROACH * 0.5) * tcp, linear=True), "lifting clear")
    _move(ctx, lambda: ctx.arm.move_pose(above), f"carrying '{held}' to {goal.label}")
    _move(ctx, lambda: ctx.arm.move_pose(place_tcp, linear=True), f"lowering '{held}' onto {goal.label}")
    ctx.gripper.open()
    ctx.holding = None
    _move(ctx, lambda: ctx.arm.move_pose(above, linear=True), "retreating")
    ctx.cell.wait(SETTLE)
    ok, why = goal.check(ctx.cell.object_pose(held).t)
    if not ok:
        raise SkillFailed(f"place: '{held}' is not in {goal.label}: {why}")


@skill(examples=("put the red block in the bin", "move blue into the tray", "drop the red block into the bin",
                  "put the green block in slot 2 of the tray", "throw the blue block into the bin",
                  "transfer the red block to the tray"))
def pick_and_place(ctx: SkillContext, object: ObjectName, target: TargetName) -> None:
    """Pick an object and place it in or on a target (fixture, tray slot, other object or frame)."""
    if target == object:
        raise SkillFailed(f"pick_and_place: cannot place '{object}' on itself")
    _refuse_keep_out(ctx, target, "pick_and_place")  # before the pick: do not leave it in the hand
    pick(ctx, object)
    place(ctx, target)


@skill(examples=("stack the blue block on the green block", "put blue on top of green",
                  "put the red block on the blue block", "pile the green block on the red block"))
def stack(ctx: SkillContext, object: ObjectName, on: ObjectName) -> None:
    """Stack one object on top of another object."""
    if on == object:
        raise SkillFailed(f"stack: cannot stack '{object}' on itself")
    pick(ctx, object)
    place(ctx, on)


# ---- helpers -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Goal:
    label: str
    centre: np.ndarray  # where the held object's centre goes, world, m
    region_lo: np.ndarray  # accepted final centre region, in the region frame
    region_hi: np.ndarray
    frame: SE3  # region frame in world

    def check(self, p: np.ndarray) -> tuple[bool, str]:
        local = (self.frame.inv() * p.reshape(3, 1)).ravel()
        inside = bool(np.all(local >= self.region_lo) and np.all(local <= self.region_hi))
        if inside:
            return True, ""
        return False, (
            f"it rests at {np.round(p, 3).tolist()} m (world), i.e. {np.round(local, 3).tolist()} m "
            f"in the target frame; the accepted region is {np.round(self.region_lo, 3).tolist()} .. "
            f"{np.round(self.region_hi, 3).tolist()} m"
        )


def _placement(ctx: SkillContext, held: str, target: str | None, pose: SE3 | None) -> _Goal:
    spec = ctx.cell.spec
    half = spec.object(held).half_height
    if pose is not None or (target is not None and target not in ctx.names.objects
                            and target not in ctx.names.fixtures and target not in ctx.names.slots):
        T = pose if pose is not None else ctx.cell.frame(target)  # type: ignore[arg-type]
        tol = np.array([0.02, 0.02, 0.03])
        return _Goal(target or "the pose", np.asarray(T.t, dtype=float), -tol, tol, SE3.Trans(T.t))
    assert target is not None
    if target in ctx.names.objects:
        base = ctx.cell.object_pose(target)
        ts = spec.object(target)
        top = base.t[2] + ts.half_height
        centre = np.array([base.t[0], base.t[1], top + half + RELEASE_GAP])
        # accepted: centred over the support within 40% of its footprint, resting on its top
        reach = 0.4 * min(ts.size[0], ts.size[1]) if ts.shape == "box" else 0.4 * ts.size[0]
        lo = np.array([-reach, -reach, ts.half_height + half - 0.01])
        hi = np.array([reach, reach, ts.half_height + half + 0.01])
        return _Goal(f"the top of '{target}'", centre, lo, hi, SE3.Trans(base.t))
    fx_name, _, slot = target.partition(".")
    _refuse_keep_out(ctx, target, "place")
    fx = spec.fixture(fx_name)
    if fx.type == "tray" and not slot and fx.slots is not None:
        target = _free_slot(ctx, fx_name)
        slot = target.partition(".")[2]
    T_fx = fx.pose.se3()
    z0 = floor_z(fx) - float(T_fx.t[2])  # floor height in the fixture frame
    if slot:
        T = fx.slot_poses()[target]
        hx, hy = slot_cell(fx)
        frame = SE3.Trans(T.t[0], T.t[1], T_fx.t[2]) * SE3.Rt(T_fx.R, [0, 0, 0])
        lo = np.array([-hx, -hy, z0 - 0.005])
        hi = np.array([hx, hy, z0 + 2 * half + 0.02])
        centre = np.array([T.t[0], T.t[1], floor_z(fx) + half + RELEASE_GAP])
        return _Goal(f"slot '{target}'", centre, lo, hi, frame)
    ix, iy, h = fx.size
    lo = np.array([-ix / 2, -iy / 2, z0 - 0.005])
    hi = np.array([ix / 2, iy / 2, z0 + h + 0.05])
    # Release a deep bin's load just below the rim rather than at the floor: the hand
    # is wider than the fingers and would hit the walls; the short drop is harmless.
    release = max(floor_z(fx) + half + RELEASE_GAP, floor_z(fx) + h - half)
    spot = _free_spot(ctx, fx)
    centre = np.array([spot[0], spot[1], release])
    return _Goal(f"'{fx_name}'", centre, lo, hi, T_fx)


def _refuse_keep_out(ctx: SkillContext, target: str, what: str) -> None:
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


def _free_spot(ctx: SkillContext, fx: FixtureSpec) -> np.ndarray:
    """The centre or a quadrant of a fixture farthest from what already lies in it (world x, y)."""
    T = fx.pose.se3()
    ix, iy = fx.size[0], fx.size[1]
    spots = [T * np.array([dx, dy, 0.0]) for dx, dy in
             [(0, 0), (ix / 4, iy / 4), (-ix / 4, iy / 4), (ix / 4, -iy / 4), (-ix / 4, -iy / 4)]]
    inside = [ctx.cell.object_pose(o).t[:2] for o in ctx.names.objects
              if o != ctx.holding and fx.contains(ctx.cell.object_pose(o).t)]
    if not inside:
        return np.asarray(spots[0]).ravel()[:2]
    return max((np.asarray(s).ravel()[:2] for s in spots),
               key=lambda s: min(float(np.linalg.norm(s - p)) for p in inside))


def _free_slot(ctx: SkillContext, tray: str) -> str:
    fx = ctx.cell.spec.fixture(tray)
    hx, hy = slot_cell(fx)
    for name, T in fx.slot_poses().items():
        occupied = False
        for obj in ctx.names.objects:
            if obj == ctx.holding:
                continue
            d = (T.inv() * ctx.cell.object_pose(obj).t.reshape(3, 1)).ravel()
            occupied |= bool(abs(d[0]) < hx and abs(d[1]) < hy and abs(d[2]) < 0.1)
        if not occupied:
            return name
    raise SkillFailed(f"place: every slot of '{tray}' is occupied; name a slot or empty the tray")


def _require_empty(ctx: SkillContext, what: str) -> None:
    if ctx.holding is not None or ctx.gripper.grasped():
        held = ctx.holding or "an object"
        raise SkillFailed(f"{what}: the gripper already holds {held}; place it first")


def _require_holding(ctx: SkillContext, what: str) -> str:
    if ctx.holding is None:
        raise SkillFailed(f"{what}: the gripper holds nothing; pick an object first")
    if not ctx.gripper.grasped():
        lost = ctx.holding
        ctx.holding = None
        raise SkillFailed(f"{what}: '{lost}' is no longer in the gripper (it was dropped)")
    return ctx.holding


def _move(ctx: SkillContext, motion: object, doing: str) -> None:
    """Run a motion; kinematic and tracking failures become SkillFailed with the step named."""
    try:
        motion()  # type: ignore[operator]
    except (KinematicsError, MotionError, SafetyViolation) as exc:
        raise SkillFailed(f"{doing} failed: {exc}") from exc
