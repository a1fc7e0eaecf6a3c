"""robocell.sim: the PyBullet simulator behind the same Arm and Gripper contracts as hardware.

Import-light: pybullet is loaded only when a world is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robocell.sim.arm import SimArm
    from robocell.sim.backend import SimBackend
    from robocell.sim.gripper import SimGripper
    from robocell.sim.world import SimWorld

__all__ = ["SimArm", "SimBackend", "SimGripper", "SimWorld"]


def __getattr__(name: str) -> object:
    import importlib

    homes = {
        "SimArm": "robocell.sim.arm",
        "SimBackend": "robocell.sim.backend",
        "SimGripper": "robocell.sim.gripper",
        "SimWorld": "robocell.sim.world",
    }
    if name in homes:
        return getattr(importlib.import_module(homes[name]), name)
    raise AttributeError(f"module 'robocell.sim' has no attribute '{name}'")
