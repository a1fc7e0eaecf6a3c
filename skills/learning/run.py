"""Running a learned skill: roll the primitives out towards today's object and target.

Every rolled-out waypoint goes through verified IK (forward kinematics checks
each solution), the joint path is retimed into the arm's speed and
acceleration limits, and the motion is executed with ``Arm.follow``, i.e.
through the same safety envelope as every other motion, on any backend.
"""

from __future__ import annotations

import math
import numpy as np
from spatialmath import SE3

from robocell.demonstration import arm_model_name
from robocell.errors import KinematicsError, MotionError, SafetyViolation, SkillError, SkillFailed
from robocell.skills.learning.model import LearnedSkill, MotionModel
from robocell.skills.learning.segment import pq_of, se3_of, target_kind
from robocell.skills.context import SkillContext
from robocell.skills.registry import ObjectName, SkillSpec, TargetName, _spec_from_function

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
        f"(the target must be a {skill.target_kind})."
    )
    learned.__qualname__ = learned.__name__ = skill.name
    return _spec_from_function(learned, skill.name, skill.examples)


def run(ctx: SkillContext, skill: LearnedSkill, object: str, target: str) -> None:
    spec = ctx.cell.spec
    model = arm_model_name(spec, ctx.arm.name)
    if model != skill.arm_model:
        raise SkillError(f"{skill.name} was learned on a {skill.arm_model} arm; arm '{ctx.arm.name}' is a "
                         f"{model}: teach it again on this arm")
    kind = target_kind(spec, target)
    if kind != skill.target_kind:
        raise SkillFailed(f"{skill.name}: target '{target}' is a {kind}, but the skill was shown putting things "
                          f"into a {skill.target_kind} ({skill.target_example}); give a {skill.target_kind}")
    if object == target:
        raise SkillFailed(f"{skill.name}: cannot put '{object}' on itself")
    if ctx.holding is not None or ctx.gripper.grasped():
        raise SkillFailed(f"{skill.name}: the gripper already holds {ctx.holding or 'an object'}; place it first")
    ctx.log(f"{skill.name} {object} -> {target}")
    T_obj = ctx.cell.object_pose(object)
    T_tgt = ctx.cell.frame(target)
    ctx.gripper.open()

    approach = _motion(skill, "approach")
    F_obj, grasp_flip = _choose_grasp(ctx, skill, object, T_obj)
    _follow(ctx, approach, F_obj, skill.grasp, grasp_flip, f"approaching '{object}'")
    ctx.gripper.close()
    if not ctx.gripper.grasped():
        up = SE3.Trans(0, 0, LIFT_AFTER_MISS) * ctx.arm.state().tcp
        _guard(lambda: ctx.arm.move_pose(up, linear=True), "backing off after a missed grasp")
        raise SkillFailed(f"{skill.name}: the gripper closed on nothing at '{object}' (width "
                          f"{ctx.gripper.width() * 1000:.1f} mm); the object may have moved or its pose is wrong")
    ctx.holding = object

    flip = _release_flip(ctx, skill, T_tgt)
    _follow(ctx, _motion(skill, "transport"), T_tgt, skill.release, flip, f"carrying '{object}' to '{target}'")
    ctx.gripper.open()
    ctx.holding = None
    retreat = skill.motion("retreat")
    if retreat is not None:
        _follow(ctx, retreat, T_tgt, retreat.goal, flip, "retreating")
    ctx.cell.wait(SETTLE)
    ok, why = placed(ctx, object, target, kind)
    if not ok:
        raise SkillFailed(f"{skill.name}: '{object}' is not in {target}: {why}")


def _motion(skill: LearnedSkill, name: str) -> MotionModel:
    m = skill.motion(name)
    if m is None:
        raise SkillError(f"learned skill '{skill.name}' has no '{name}' motion; learn it again")
    return m


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1.0, 1.0)))


def _choose_grasp(ctx: SkillContext, skill: LearnedSkill, obj: str, T_obj: SE3) -> tuple[SE3, int]:
    """Of the grasps the object's symmetry allows, the one turned least from the demonstrated grasp.

    A square block looks the same every quarter turn, any other block every half
    turn; a parallel gripper is the same after a half turn about its axis.
    Picking the nearest keeps the wrist where the demonstration had it.
    """
    o = ctx.cell.spec.object(obj)
    square = o.shape == "cylinder" or (o.shape == "box" and abs(o.size[0] - o.size[1]) < 1e-3)
    step = math.pi / 2 if square else math.pi
    ref = se3_of(skill.demo_grasp_world).R
    best: tuple[float, SE3, int] | None = None
    for k in range(int(round(2 * math.pi / step))):
        F = T_obj * SE3.Rz(k * step)
        for flip in (0, 1):
            g = se3_of(skill.grasp) * SE3.Rz(math.pi * flip)
            err = _angle((F * g).R, ref)
            if best is None or err < best[0] - 1e-9:
                best = (err, F, flip)
    assert best is not None
    return best[1], best[2]


def _release_flip(ctx: SkillContext, skill: LearnedSkill, T_tgt: SE3) -> int:
    """Release as demonstrated, or turned half about the gripper axis, whichever turns the wrist less now."""
    now = ctx.arm.state().tcp.R
    errs = [_angle((T_tgt * se3_of(skill.release) * SE3.Rz(math.pi * f)).R, now) for f in (0, 1)]
    return int(np.argmin(errs))


def _follow(ctx: SkillContext, motion: MotionModel, F: SE3, goal: np.ndarray, flip: int, doing: str) -> None:
    """Roll ``motion`` out in frame ``F`` from where the TCP is to ``goal``, IK every waypoint, follow it.

    ``flip`` turns the whole path half about the TCP axis (a parallel gripper's symmetry): the
    primitive then runs in the orientations it was shown, never through a 180 degree blend.
    """
    arm = ctx.arm
    Z = np.asarray(SE3.Rz(math.pi * flip).A)
    start = pq_of(np.asarray(F.inv().A) @ np.asarray(arm.state().tcp.A) @ np.linalg.inv(Z))
    t, y = motion.primitive.rollout(start, goal)
    Fm = np.asarray(F.A)
    poses = [SE3(Fm @ se3_of(p).A @ Z, check=False) for p in y]
    q = np.empty((len(poses), len(arm.joint_names)))
    q[0] = arm.state().q
    for k in range(1, len(poses)):
        try:
            q[k] = arm.ik(poses[k], q[k - 1])
        except (KinematicsError, SafetyViolation) as exc:
            raise SkillFailed(f"{doing}: waypoint {k} of {len(poses) - 1} ({k / (len(poses) - 1):.0%} of the way, "
                              f"TCP at {np.round(poses[k].t, 3).tolist()} m) is out of reach: {exc}") from exc
        jump = np.abs(q[k] - q[k - 1])
        if jump.max() > MAX_JOINT_STEP:
            j = int(np.argmax(jump))
            raise SkillFailed(f"{doing}: joint {arm.joint_names[j]} would jump {jump[j]:.2f} rad between waypoints "
                              f"{k - 1} and {k} (limit {MAX_JOINT_STEP} rad): the path passes near a singularity "
                              "or a joint limit for this object and target pose")
    traj = retimed(ctx, t, q, np.array([p.t for p in poses]))
    _guard(lambda: arm.follow(traj), doing)


def retimed(ctx: SkillContext, t: np.ndarray, q: np.ndarray, tcp: np.ndarray):  # type: ignore[no-untyped-def]
    """The joint path on the demonstrated timing, slowed down uniformly where it would break a limit."""
    from robocell.trajectory import timed_trajectory

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


def _guard(motion: object, doing: str) -> None:
    try:
        motion()  # type: ignore[operator]
    except (KinematicsError, MotionError, SafetyViolation) as exc:
        raise SkillFailed(f"{doing} failed: {exc}") from exc


def placed(ctx: SkillContext, obj: str, target: str, kind: str) -> tuple[bool, str]:
    """Whether ``obj`` rests in or on ``target`` (tray slot, fixture, object or named frame)."""
    from robocell.skills.geometry import slot_cell

    spec = ctx.cell.spec
    p = ctx.cell.object_pose(obj).t
    half = spec.object(obj).half_height
    if kind == "slot":
        fx_name = target.partition(".")[0]
        fx = spec.fixture(fx_name)
        T = fx.slot_poses()[target]
        local = (T.inv() * p.reshape(3, 1)).ravel()
        hx, hy = slot_cell(fx)
        ok = abs(local[0]) <= hx and abs(local[1]) <= hy and -0.005 <= local[2] <= 2 * half + 0.02
        return ok, f"it rests at {np.round(local, 3).tolist()} m in the slot's frame (cell ±{hx:.3f} × ±{hy:.3f} m)"
    if kind == "fixture":
        fx = spec.fixture(target)
        return fx.contains(p), f"it rests at {np.round(p, 3).tolist()} m (world), outside '{target}'"
    if kind == "object":
        base = ctx.cell.object_pose(target)
        ts = spec.object(target)
        d = float(np.linalg.norm(p[:2] - base.t[:2]))
        ok = d < 0.4 * min(ts.size[:2]) and p[2] > base.t[2] + ts.half_height
        return ok, f"it rests {d * 1000:.0f} mm beside the centre of '{target}' at height {p[2]:.3f} m"
    T = ctx.cell.frame(target)
    d = float(np.linalg.norm(p - T.t))
    return d < 0.03, f"it rests {d * 1000:.0f} mm from frame '{target}' (3 cm allowed)"
