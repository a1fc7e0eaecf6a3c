"""robocell: program robot cells with skills, in simulation and on hardware alike.

``import robocell`` stays light: the simulator, kinematics and CLI load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robocell.errors import (
    BackendError,
    CellFileError,
    ConfigError,
    KinematicsError,
    MotionCancelled,
    MotionError,
    ProgramError,
    RobocellError,
    SafetyViolation,
    SkillError,
    SkillFailed,
    TrackingError,
    UnreachableError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from robocell.core.arm import Arm, ArmState, Gripper, Mode, MotionResult
    from robocell.core.cell import Cell

__all__ = [
    "Arm", "ArmState", "BackendError", "Cell", "CellFileError", "ConfigError", "Gripper",
    "KinematicsError", "Mode", "MotionCancelled", "MotionError", "MotionResult", "ProgramError",
    "RobocellError", "SafetyViolation", "SkillError", "SkillFailed", "TrackingError",
    "UnreachableError", "__version__",
]

_LAZY = {
    "Cell": "robocell.core.cell",
    "Arm": "robocell.core.arm",
    "ArmState": "robocell.core.arm",
    "Gripper": "robocell.core.arm",
    "Mode": "robocell.core.arm",
    "MotionResult": "robocell.core.arm",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robocell' has no attribute '{name}'")
