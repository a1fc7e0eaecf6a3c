"""Running a learned skill: roll the primitives out towards today's object and target.

Every rolled-out waypoint goes through verified IK (forward kinematics checks
each solution), the joint path is retimed into the arm's speed and
acceleration limits, and the motion is executed with ``Arm.follow``, i.e.
through the same safety envelope as every other motion, on any backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from spatialmath import SE3

from robocell.cellfile.spec import ObjectSpec
from robocell.recording.demonstration import arm_model_name
from robocell.errors import KinematicsError, SafetyViolation, SkillError, SkillFailed
from robocell.skills.context import SkillContext
from robocell.skills.placement import check_placed, free_slot, placement
from robocell.skills.learning.model import LearnedSkill, MotionModel
from robocell.skills.learning.segment import path_frame, pq_of, se3_of, target_kind
from robocell.skills.registry import ObjectName, SkillSpec, TargetName, spec_from_function
if TYPE_CHECKING:
    from robocell.motion.trajectory import JointTrajectory

# Waypoints are 10 ms apart: an IK error of 1 mm between neighbours reads as ~10 rad/s^2 of
# joint acceleration, so a rolled-out path is solved ten times tighter than a single target.
IK_POS_TOL = 1e-4  # m
IK_ROT_TOL = 1e-3  # rad
MAX_JOINT_STEP = 0.25  # rad between 10 ms waypoints: more means IK switched branch
TIME_MARGIN = 1.05  # retimed motions stay 5 % inside the limits (finite-difference estimates)
SETTLE = 0.3  # s for a released object to come to rest before checking where it is
LIFT_AFTER_MISS = 0.08  # m: back off upwards after closing on nothing


def skill_spec(skill: LearnedSkill) -> SkillSpec:
    """The learned skill as an ordinary skill: ``NAME(object, target)``."""

    def learned(ctx: SkillContext, object: ObjectName, target: TargetName) -> None:
        run(ctx, skill, object, target)

    prov = skill.provenance
    learned.__doc__ = (
        f"{skill.description}\n\nLearned from {len(prov.get('demos', []))} demonstration(s) "
        f"({skill.method}, fit error {prov.get('fit_error_rms_m', float('nan')) * 1000:.1f} mm RMS) on "
        f"{prov.get('learned', '?')}; shown with {skill.object_example} -> {skill.target_example} "
        f"(the target must be {_a(skill.target_kind)})."
    )
    learned.__qualname__ = learned.__name__ = skill.name
    return spec_from_function(learned, skill.name, skill.examples)


def run(ctx: SkillContext, skill: LearnedSkill, object: str, target: str) -> None:
    spec = ctx.cell.spec
    model = arm_model_name(spec, ctx.arm.name)
    if model != skill.arm_model:
        raise SkillError(f"{skill.name} was learned on a {skill.arm_model} arm; arm '{ctx.arm.name}' is a "
                         f"{model}: teach it again on this arm")
    kind = target_kind(spec, target)
    if kind == "fixture" and skill.target_kind == "slot" and spec.fixture(target).slots is not None:
        # "into the tray": the first free slot, as place does
        target, kind = free_slot(ctx, target, object, skill.name), "slot"
    if kind != skill.target_kind:
        raise SkillFailed(f"{skill.name}: target '{target}' is {_a(kind)}, but the skill was shown putting things "
                          f"into {_a(skill.target_kind)} ({skill.target_example}); give {_a(skill.target_kind)}")
    if object == target:
        raise SkillFailed(f"{skill.name}: cannot put '{object}' on itself")
    if ctx.holding is not None or ctx.gripper.grasped():
        raise SkillFailed(f"{skill.name}: the gripper already holds {ctx.holding or 'an object'}; place it first")
    ctx.log(f"{skill.name} {object} -> {target}")
    # what "in the target" means, as for the built-in place; refuses an occupied slot before the arm moves
    goal = placement(ctx, object, target, None, skill.name)
    T_obj = ctx.cell.object_pose(object)
    T_tgt = ctx.cell.frame(target)
    ctx.gripper.open()

    plan = plan_joints(ctx, skill, spec.object(object), T_obj, T_tgt, object, target)
    _run_segment(ctx, plan[0])
    ctx.gripper.close()
    if not ctx.gripper.grasped():
        up = SE3.Trans(0, 0, LIFT_AFTER_MISS) * ctx.arm.state().tcp
        ctx.move(lambda: ctx.arm.move_pose(up, linear=True), "backing off after a missed grasp")
        raise SkillFailed(f"{skill.name}: the gripper closed on nothing at '{object}' (width "
                          f"{ctx.gripper.width() * 1000:.1f} mm); the object may have moved or its pose is wrong")
    ctx.holding = object
    _run_segment(ctx, plan[1])
    ctx.gripper.open()
    ctx.holding = None
    for seg in plan[2:]:
        _run_segment(ctx, seg)
    ctx.cell.wait(SETTLE)
    check_placed(ctx, goal, object, skill.name)


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _motion(skill: LearnedSkill, name: str) -> MotionModel:
    m = skill.motion(name)
    if m is None:
        raise SkillError(f"learned skill '{skill.name}' has no '{name}' motion; learn it again")
    return m


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1.0, 1.0)))


IkFn = Callable[[SE3, np.ndarray], "np.ndarray | None"]


Grasp = tuple[SE3, int, int]  # object frame (turned by the object's symmetry), grasp flip, release flip


def grasp_candidates(skill: LearnedSkill, o: ObjectSpec, T_obj: SE3, T_tgt: SE3, *,
                     ik: IkFn | None = None, q_now: np.ndarray | None = None,
                     lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> list[Grasp]:
    """The equivalent grasps and releases, best first: (object frame, grasp flip, release flip).

    A square block looks the same every quarter turn, any other block every half turn;
    a parallel gripper is the same after a half turn about its axis.  With an arm (``ik``)
    only combinations whose grasp and release are reachable are kept, those whose grasp and
    release configurations stay furthest from the joint limits first (a wrist that starts the
    carry at its limit cannot turn any further); without one, the grasp turned least from the
    demonstrated one first.
    """
    square = o.shape == "cylinder" or (o.shape == "box" and abs(o.size[0] - o.size[1]) < 1e-3)
    step = math.pi / 2 if square else math.pi
    ref = se3_of(skill.demo_grasp_world).R
    scored: list[tuple[float, int, Grasp]] = []
    for k in range(int(round(2 * math.pi / step))):
        F = T_obj * SE3.Rz(k * step)
        for gflip in (0, 1):
            G = F * se3_of(skill.grasp) * SE3.Rz(math.pi * gflip)
            turn = _angle(G.R, ref) / math.pi
            for rflip in (0, 1):
                Rl = T_tgt * se3_of(skill.release) * SE3.Rz(math.pi * rflip)
                if ik is None or q_now is None or lower is None or upper is None:
                    score = -turn - _angle(Rl.R, G.R) / math.pi
                else:
                    q_g = ik(G, q_now)
                    q_r = ik(Rl, q_g) if q_g is not None else None
                    if q_g is None or q_r is None:
                        continue
                    score = min(_margin(q_g, lower, upper), _margin(q_r, lower, upper)) - 0.05 * turn
                scored.append((round(score, 9), -len(scored), (F, gflip, rflip)))  # ties: the first one
    if not scored:
        raise SkillFailed(f"{skill.name}: no grasp of the object at {np.round(T_obj.t, 3).tolist()} m and release "
                          f"at {np.round(T_tgt.t, 3).tolist()} m is reachable within the joint limits")
    return [c for _, _, c in sorted(scored, key=lambda x: (x[0], x[1]), reverse=True)]


def choose_grasp(skill: LearnedSkill, o: ObjectSpec, T_obj: SE3, T_tgt: SE3, *,
                 ik: IkFn | None = None, q_now: np.ndarray | None = None,
                 lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> Grasp:
    """The best of :func:`grasp_candidates`."""
    return grasp_candidates(skill, o, T_obj, T_tgt, ik=ik, q_now=q_now, lower=lower, upper=upper)[0]


def _margin(q: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Smallest distance to a joint limit, as a fraction of that joint's range."""
    span = np.maximum(upper - lower, 1e-9)
    return float(np.min(np.minimum(q - lower, upper - q) / span))


def world_path(motion: MotionModel, F: SE3, goal: np.ndarray, flip: int, tcp_now: SE3) -> tuple[np.ndarray, list[SE3]]:
    """Times (s) and world TCP poses of ``motion`` from ``tcp_now`` to ``goal`` (a pose in frame ``F``).

    The primitive runs in the path frame from here to the goal (see segment.py).  ``flip`` turns
    the whole path half about the TCP axis (a parallel gripper's symmetry): the primitive then
    runs in the orientations it was shown, never through a 180 degree blend.
    """
    Z = np.asarray(SE3.Rz(math.pi * flip).A)
    goal_world = np.asarray(F.A) @ se3_of(goal).A
    P = path_frame(tcp_now.t, goal_world[:3, 3], F)
    Pm, Pinv = np.asarray(P.A), np.asarray(P.inv().A)
    start = pq_of(Pinv @ np.asarray(tcp_now.A) @ np.linalg.inv(Z))
    t, y = motion.primitive.rollout(start, pq_of(Pinv @ goal_world))
    return t, [SE3(Pm @ se3_of(p).A @ Z, check=False) for p in y]


def _ik(ctx: SkillContext) -> IkFn:
    def solve(pose: SE3, seed: np.ndarray) -> np.ndarray | None:
        try:
            return ctx.arm.ik(pose, seed)
        except (KinematicsError, SafetyViolation):
            return None

    return solve


@dataclass(frozen=True)
class JointSegment:
    """One segment solved in joint space: what it does, times (s), joints (rad), TCP positions (m)."""

    doing: str
    t: np.ndarray
    q: np.ndarray
    tcp: np.ndarray


def plan_joints(ctx: SkillContext, skill: LearnedSkill, obj: ObjectSpec, T_obj: SE3, T_tgt: SE3,
                object: str, target: str) -> list[JointSegment]:
    """Every segment's joint path, for the best grasp and release whose whole path is feasible.

    All of it is solved before the arm moves, so an unreachable waypoint or an IK branch
    switch (near a joint limit) costs nothing: the next equivalent grasp is tried instead
    of stopping with the object in the air.
    """
    arm = ctx.arm
    state = arm.state()
    cands = grasp_candidates(skill, obj, T_obj, T_tgt, ik=_ik(ctx), q_now=state.q,
                             lower=arm.safety.lower, upper=arm.safety.upper)
    errors: list[str] = []
    for F_obj, gflip, rflip in cands:
        try:
            segs = [_solve(ctx, _motion(skill, "approach"), F_obj, skill.grasp, gflip, state.q, state.tcp,
                           f"approaching '{object}'")]
            segs.append(_solve(ctx, _motion(skill, "transport"), T_tgt, skill.release, rflip, segs[-1].q[-1],
                               None, f"carrying '{object}' to '{target}'"))
            retreat = skill.motion("retreat")
            if retreat is not None:
                segs.append(_solve(ctx, retreat, T_tgt, retreat.goal, rflip, segs[-1].q[-1], None, "retreating"))
            if errors:
                ctx.log(f"{skill.name}: grasp {len(errors) + 1} of {len(cands)} is feasible ({errors[0]})")
            return segs
        except SkillFailed as exc:
            errors.append(str(exc))
    raise SkillFailed(f"{skill.name}: none of the {len(cands)} reachable grasp/release combinations has a "
                      f"feasible path; the best one failed: {errors[0]}")


def _solve(ctx: SkillContext, motion: MotionModel, F: SE3, goal: np.ndarray, flip: int, q0: np.ndarray,
           tcp0: SE3 | None, doing: str) -> JointSegment:
    """Roll ``motion`` out from joints ``q0`` (TCP ``tcp0``, or its FK) and IK every waypoint."""
    arm = ctx.arm
    tcp0 = tcp0 if tcp0 is not None else arm.tcp_pose(q0)
    t, poses = world_path(motion, F, goal, flip, tcp0)
    q = np.empty((len(poses), len(arm.joint_names)))
    q[0] = q0
    for k in range(1, len(poses)):
        try:
            q[k] = arm.ik(poses[k], q[k - 1], pos_tol=IK_POS_TOL, rot_tol=IK_ROT_TOL)
        except (KinematicsError, SafetyViolation) as exc:
            raise SkillFailed(f"{doing}: waypoint {k} of {len(poses) - 1} ({k / (len(poses) - 1):.0%} of the way, "
                              f"TCP at {np.round(poses[k].t, 3).tolist()} m) is out of reach: {exc}") from exc
        jump = np.abs(q[k] - q[k - 1])
        if jump.max() > MAX_JOINT_STEP:
            j = int(np.argmax(jump))
            raise SkillFailed(f"{doing}: joint {arm.joint_names[j]} would jump {jump[j]:.2f} rad between waypoints "
                              f"{k - 1} and {k} (limit {MAX_JOINT_STEP} rad): the path passes near a singularity "
                              "or a joint limit for this object and target pose")
    return JointSegment(doing, t, q, np.array([p.t for p in poses]))


def _run_segment(ctx: SkillContext, seg: JointSegment) -> None:
    traj = retimed(ctx, seg.t, seg.q, seg.tcp)
    ctx.move(lambda: ctx.arm.follow(traj), seg.doing)


def plan_world(skill: LearnedSkill, obj_spec: ObjectSpec, T_obj: SE3, T_tgt: SE3,
               tcp_start: SE3) -> list[tuple[str, list[SE3]]]:
    """Every segment's world TCP path for an object at ``T_obj`` and a target at ``T_tgt`` (no arm needed).

    Each segment starts where the previous one ends; used for plots and dry runs.
    """
    F_obj, gflip, rflip = choose_grasp(skill, obj_spec, T_obj, T_tgt)
    out = []
    _, path = world_path(_motion(skill, "approach"), F_obj, skill.grasp, gflip, tcp_start)
    out.append(("approach", path))
    _, path = world_path(_motion(skill, "transport"), T_tgt, skill.release, rflip, path[-1])
    out.append(("transport", path))
    retreat = skill.motion("retreat")
    if retreat is not None:
        _, path = world_path(retreat, T_tgt, retreat.goal, rflip, path[-1])
        out.append(("retreat", path))
    return out


def retimed(ctx: SkillContext, t: np.ndarray, q: np.ndarray, tcp: np.ndarray) -> JointTrajectory:
    """The joint path on the demonstrated timing, slowed down uniformly where it would break a limit."""
    from robocell.motion.trajectory import timed_trajectory

    safety = ctx.arm.safety
    # speeds and accelerations estimated exactly as the safety envelope will estimate them
    qd = np.gradient(q, t, axis=0)
    qdd = np.diff(qd, axis=0) / np.diff(t)[:, None]
    v = np.gradient(tcp, t, axis=0)
    scale = max(
        1.0,
        float(np.max(np.abs(qd) / safety.max_speed)),
        math.sqrt(float(np.max(np.abs(qdd) / safety.max_accel))),
        float(np.max(np.linalg.norm(v, axis=1))) / safety.max_tcp_speed,
    )
    if scale > 1.0:
        scale *= TIME_MARGIN
    return timed_trajectory(t * scale, q)
