"""Built-in skills. They use only the core Arm/Gripper/Cell contracts, so they run
unchanged in simulation and on hardware.  Each checks its preconditions and then
verifies the effect it promises, raising :class:`SkillFailed` otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from spatialmath import SE3

from robocell.errors import SkillFailed
from robocell.skills.binding import pose_from_value
from robocell.skills.context import SkillContext
from robocell.skills.feasibility import first_feasible
from robocell.skills.geometry import (
    Footprint,
    fixture_footprints,
    grasp_options,
    object_footprint,
    top_down,
    top_down_yaw,
)
from robocell.skills.placement import check_placed, placement
from robocell.skills.registry import FrameName, ObjectName, Pose, TargetName, skill

APPROACH = 0.10  # m above a grasp or place pose before the straight-line descent
LIFT = 0.12  # m lifted after a grasp
SETTLE = 0.3  # s for a released object to come to rest before checking


@skill(examples=("go home", "return to the home position", "go back home", "park the arm", "home the robot"))
def home(ctx: SkillContext) -> None:
    """Move the arm to its home configuration (joint move)."""
    ctx.log("home")
    ctx.move(lambda: ctx.arm.move_joints(ctx.home), "moving home")


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
    ctx.move(lambda: ctx.arm.move_pose(goal, linear=linear), f"moving to {target or 'the pose'}")


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
    options = grasp_options(spec, start, ctx.gripper.max_width, top_down_yaw(ctx.arm.state().tcp),
                            keep_clear=_surroundings(ctx, object))
    if not options:
        raise SkillFailed(
            f"pick: '{object}' ({spec.shape} {spec.size} m) is wider than the gripper opens "
            f"({ctx.gripper.max_width:.3f} m) on every side"
        )
    # of the headings that touch nothing around it, the first whose approach, descent and lift plan
    # with room at the joint limits (a wrist at its limit cannot descend in a straight line)
    plans = [[(SE3.Trans(0, 0, APPROACH) * g.tcp, False), (g.tcp, True), (SE3.Trans(0, 0, LIFT) * g.tcp, True)]
             for g, _ in options]
    grasp = options[first_feasible(ctx.arm, ctx.arm.state().q, plans, [not hits for _, hits in options])][0]
    above = SE3.Trans(0, 0, APPROACH) * grasp.tcp
    ctx.log(f"pick {object}")
    ctx.gripper.open()
    ctx.move(lambda: ctx.arm.move_pose(above), f"approaching '{object}'")
    ctx.move(lambda: ctx.arm.move_pose(grasp.tcp, linear=True), f"descending onto '{object}'")
    ctx.gripper.close()
    if not ctx.gripper.grasped():
        ctx.move(lambda: ctx.arm.move_pose(above, linear=True), "retreating after a missed grasp")
        raise SkillFailed(
            f"pick: the gripper closed on nothing at '{object}' (width {ctx.gripper.width() * 1000:.1f} mm); "
            "the object may have moved or its pose is wrong"
        )
    ctx.move(lambda: ctx.arm.move_pose(SE3.Trans(0, 0, LIFT) * grasp.tcp, linear=True), f"lifting '{object}'")
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

    Refuses an occupied slot (or a full tray, or an object that already carries another) before moving.
    Lowers the object onto its support, opens, retreats, and checks the object rests inside the target
    region: in a fixture or slot on its floor (an object that ended on top of another one is not placed).
    """
    if (target is None) == (pose is None):
        raise SkillFailed("place: give exactly one of 'target' or 'pose'")
    held = _require_holding(ctx, "place")
    goal = placement(ctx, held, target, pose_from_value(pose) if pose is not None else None)
    ctx.log(f"place {held} -> {goal.label}")
    state = ctx.arm.state()
    tcp = state.tcp
    clear = SE3.Trans(0, 0, APPROACH * 0.5) * tcp
    # carry the object's measured offset in the hand, so a grasp that is off-centre still lands on target;
    # the parallel hand may also release turned half about its axis (the offset turns with it), which
    # the lowering takes when the wrist as it is would pass a singularity or a joint limit
    offset = ctx.cell.object_pose(held).t - tcp.t
    releases = [top_down(goal.centre - offset, top_down_yaw(tcp)),
                top_down(goal.centre - np.array([-offset[0], -offset[1], offset[2]]), top_down_yaw(tcp) + math.pi)]
    # lifting clear in a straight line is preferred; where that line would flip a joint, a joint move
    # does it (the object is already a lift above its support, and the carry is a joint move anyway)
    variants = [(r, straight) for straight in (True, False) for r in releases]
    plans = [[(clear, straight), (SE3.Trans(0, 0, APPROACH) * r, False), (r, True)] for r, straight in variants]
    place_tcp, straight = variants[first_feasible(ctx.arm, state.q, plans, [v[1] for v in variants])]
    above = SE3.Trans(0, 0, APPROACH) * place_tcp
    ctx.move(lambda: ctx.arm.move_pose(clear, linear=straight), "lifting clear")
    ctx.move(lambda: ctx.arm.move_pose(above), f"carrying '{held}' to {goal.label}")
    ctx.move(lambda: ctx.arm.move_pose(place_tcp, linear=True), f"lowering '{held}' onto {goal.label}")
    ctx.gripper.open()
    ctx.holding = None
    ctx.move(lambda: ctx.arm.move_pose(above, linear=True), "retreating")
    ctx.cell.wait(SETTLE)
    check_placed(ctx, goal, held, "place")


@skill(examples=("put the red block in the bin", "move blue into the tray", "drop the red block into the bin",
                  "put the green block in slot 2 of the tray", "throw the blue block into the bin",
                  "transfer the red block to the tray"))
def pick_and_place(ctx: SkillContext, object: ObjectName, target: TargetName) -> None:
    """Pick an object and place it in or on a target (fixture, tray slot, other object or frame)."""
    if target == object:
        raise SkillFailed(f"pick_and_place: cannot place '{object}' on itself")
    # before the pick: a target it cannot go to (keep-out, an occupied slot) must not leave it in the hand
    placement(ctx, object, target, None, "pick_and_place")
    pick(ctx, object)
    place(ctx, target)


@skill(examples=("stack the blue block on the green block", "put blue on top of green",
                  "put the red block on the blue block", "pile the green block on the red block"))
def stack(ctx: SkillContext, object: ObjectName, on: ObjectName) -> None:
    """Stack one object on top of another object."""
    if on == object:
        raise SkillFailed(f"stack: cannot stack '{object}' on itself")
    placement(ctx, object, on, None, "stack")  # before the pick: 'on' may already carry something
    pick(ctx, object)
    place(ctx, on)


# ---- helpers -----------------------------------------------------------------------


def _surroundings(ctx: SkillContext, object: str) -> list[Footprint]:
    """Everything the open hand must not land on while grasping ``object``: other objects, fixture walls."""
    spec = ctx.cell.spec
    around = [object_footprint(o, spec.object(o), ctx.cell.object_pose(o)) for o in ctx.names.objects if o != object]
    return [f for f in around if f is not None] + [f for fx in spec.fixtures for f in fixture_footprints(fx)]


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
