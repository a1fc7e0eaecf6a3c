"""Dry-run planning: whether a sequence of moves plans from a configuration, and how near the joint limits it goes.

Skills use it to choose among equivalent grasps and releases before the arm moves: a
heading whose descent would pass a wrist singularity or end at a joint limit is passed
over for one that plans, instead of failing half way with the object in the hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from spatialmath import SE3

from robocell.core.arm import Arm
from robocell.errors import RobocellError
from robocell.motion.planning import plan_pose

MIN_JOINT_MARGIN = 0.15  # rad: closer than this to a joint limit leaves the wrist no room to correct


def plan_margin(arm: Arm, q0: np.ndarray, moves: Sequence[tuple[SE3, bool]]) -> float | None:
    """Smallest distance (rad) to a joint limit along ``moves`` (pose, linear) from ``q0``; None if one fails to plan.

    Each move is planned as :meth:`Arm.move_pose` would plan it, from where the previous one ends.
    """
    base = np.asarray(arm.base.A, dtype=float)
    lower, upper = arm.safety.lower, arm.safety.upper
    q = np.asarray(q0, dtype=float)
    margin = float("inf")
    for pose, linear in moves:
        try:
            traj, q = plan_pose(arm.kinematics, arm.safety, base, q, pose, linear=linear)
        except RobocellError:
            return None
        margin = min(margin, float(np.min(np.minimum(traj.q - lower, upper - traj.q))))
    return margin


def first_feasible(arm: Arm, q0: np.ndarray, plans: Sequence[Sequence[tuple[SE3, bool]]],
                   preferred: Sequence[bool] | None = None) -> int:
    """Index of the plan to use: the first preferred one that plans with room at the joint limits.

    Failing that, the plan with the most room (preferred ones first); failing that, 0, whose
    motion then fails with its own message.
    """
    pref = list(preferred) if preferred is not None else [True] * len(plans)
    scored: list[tuple[bool, float, int]] = []
    for i, moves in enumerate(plans):
        m = plan_margin(arm, q0, moves)
        if m is None:
            continue
        if pref[i] and m >= MIN_JOINT_MARGIN:
            return i
        scored.append((pref[i], m, -i))
    return -max(scored)[2] if scored else 0
