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
    from robocell.arm import Arm, ArmState, Gripper, Mode, MotionResult
    from robocell.cell import Cell

__all__ = [
    "Arm", "ArmState", "BackendError", "Cell", "CellFileError", "ConfigError", "Gripper",
    "KinematicsError", "Mode", "MotionCancelled", "MotionError", "MotionResult", "ProgramError",
    "RobocellError", "SafetyViolation", "SkillError", "SkillFailed", "TrackingError",
    "UnreachableError", "__version__",
]

_LAZY = {
    "Cell": "robocell.cell",
    "Arm": "robocell.arm",
    "ArmState": "robocell.arm",
    "Gripper": "robocell.arm",
    "Mode": "robocell.arm",
    "MotionResult": "robocell.arm",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robocell' has no attribute '{name}'")
