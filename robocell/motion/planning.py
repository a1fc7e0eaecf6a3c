"""Checked motion planning shared by every Arm and by the arm server.

The in-process arms (simulator) plan on the client; the ZeroMQ server plans
again as the safety authority.  Both call these functions, so a motion is
planned and checked the same way wherever it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from spatialmath import SE3

from robocell.errors import ConfigError
from robocell.motion.limits import MIN_SPEED as MIN_SPEED

if TYPE_CHECKING:
    from robocell.motion.kinematics import Kinematics
    from robocell.motion.safety import SafetyEnvelope
    from robocell.motion.trajectory import JointTrajectory

FOLLOW_MAX_GAP = 0.05  # rad: a followed trajectory must start this close to the arm


def speed_factor(speed: float) -> float:
    if not (isinstance(speed, (int, float)) and np.isfinite(speed) and MIN_SPEED <= speed <= 1.0):
        raise ConfigError(f"speed = {speed!r} is not allowed: give a fraction of the limits in [{MIN_SPEED}, 1]")
    return float(speed)


def plan_joints(kin: Kinematics, safety: SafetyEnvelope, base: np.ndarray, q0: np.ndarray,
                q_goal: np.ndarray, speed: float = 1.0) -> JointTrajectory:
    """Joint-interpolated move to ``q_goal`` within the (scaled) speed and accel limits."""
    from robocell.motion.trajectory import plan_joint_move

    safety.check_joints(q_goal, what="move_joints target")
    safety.check_tcp((base @ kin.fk_matrix(q_goal))[:3, 3], what="move_joints target")
    s = speed_factor(speed)
    return plan_joint_move(q0, q_goal, safety.max_speed * s, safety.max_accel * s)


def plan_pose(kin: Kinematics, safety: SafetyEnvelope, base: np.ndarray, q0: np.ndarray, pose: SE3,
              *, linear: bool = False, speed: float = 1.0) -> tuple[JointTrajectory, np.ndarray]:
    """Move the TCP to a world pose: (trajectory, goal configuration)."""
    from robocell.motion.trajectory import plan_joint_move, plan_linear_move

    s = speed_factor(speed)
    safety.check_tcp(np.asarray(pose.t, dtype=float), what="move_pose target")
    target = SE3(np.linalg.inv(base), check=False) * pose
    if linear:
        traj = plan_linear_move(kin, q0, target, vmax=safety.max_speed * s, amax=safety.max_accel * s,
                                max_lin_speed=safety.max_tcp_speed * s)
        return traj, traj.q[-1].copy()
    q_goal = kin.ik(target, q0)
    safety.check_joints(q_goal, what="IK solution")
    return plan_joint_move(q0, q_goal, safety.max_speed * s, safety.max_accel * s), q_goal


def check_follow_start(traj: JointTrajectory, q_now: np.ndarray) -> None:
    gap = float(np.max(np.abs(traj.q[0] - q_now)))
    if gap > FOLLOW_MAX_GAP:
        raise ConfigError(
            f"follow: the trajectory starts {gap:.3f} rad away from the arm's current "
            f"configuration (limit {FOLLOW_MAX_GAP} rad); move to its first point with move_joints first"
        )


def check_motion(kin: Kinematics, safety: SafetyEnvelope, base: np.ndarray, traj: JointTrajectory) -> None:
    """The envelope check of a whole trajectory, TCP path included (sampled ~25 times)."""
    stride = max(1, len(traj.q) // 25)
    samples = [*traj.q[::stride], traj.q[-1]]
    tcp = np.array([(base @ kin.fk_matrix(q))[:3, 3] for q in samples])
    safety.check_trajectory(traj, tcp_positions=tcp)
