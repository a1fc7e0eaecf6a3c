"""Builds an arm's kinematics and safety envelope from its cell-file entry.

Shared by every backend (and by the hardware server later), so the limits a
simulated arm obeys are exactly the limits a real one obeys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from robocell.motion.kinematics import Kinematics
from robocell.motion.arm_models import ArmModel
from robocell.motion.safety import SafetyEnvelope

if TYPE_CHECKING:
    from robocell.cellfile.spec import ArmSpec


def arm_parts(arm: ArmSpec) -> tuple[ArmModel, Kinematics, SafetyEnvelope]:
    """(model, kinematics with the tightened limits, safety envelope) for one arm."""
    model = arm.arm_model()
    base_kin = Kinematics.from_model(model)
    lower = base_kin.urdf_lower.copy()
    upper = base_kin.urdf_upper.copy()
    for joint, (lo, hi) in arm.safety.joint_limits.items():
        i = model.joint_names.index(joint)
        lower[i], upper[i] = lo, hi
    kin = base_kin.with_limits(lower, upper) if arm.safety.joint_limits else base_kin
    ws = arm.safety.workspace
    safety = SafetyEnvelope(
        joint_names=model.joint_names,
        lower=kin.lower,
        upper=kin.upper,
        max_speed=arm.safety.speeds(model.dof),
        max_accel=arm.safety.accels(model.dof),
        workspace_min=np.asarray(ws.min, dtype=float),
        workspace_max=np.asarray(ws.max, dtype=float),
        max_tcp_speed=float(arm.safety.max_tcp_speed),
    )
    return model, kin, safety
