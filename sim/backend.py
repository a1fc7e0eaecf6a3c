"""The ``sim`` backend: a SimWorld with one SimArm and SimGripper per arm."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from spatialmath import SE3

from robocell.core.arm import Arm, Gripper
from robocell.errors import ConfigError
from robocell.motion.kinematics_setup import arm_parts

from robocell.sim.arm import SimArm
from robocell.sim.camera import GifRecorder, render
from robocell.sim.gripper import SimGripper
from robocell.sim.keepout import KeepOutMonitor
from robocell.sim.world import SimWorld

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec
    from robocell.recording.recorder import SampleSink
    from robocell.sim.sampling import SimSampler


class SimBackend:
    """A simulated cell; implements the core Backend protocol."""

    def __init__(self, spec: CellSpec, *, seed: int | None = None, gui: bool = False,
                 realtime: bool = False, record: str | Path | None = None,
                 camera: str | None = None, collision_stop: bool = True) -> None:
        """``collision_stop=False`` records keep-out collisions without stopping the arms (for a
        caller that stops them itself, e.g. the arm server's sim driver)."""
        self.world = SimWorld(spec, seed=None, gui=gui, realtime=realtime)
        self.arms: dict[str, Arm] = {}
        self.grippers: dict[str, Gripper] = {}
        for arm_spec in spec.arms:
            model, kin, safety = arm_parts(arm_spec)
            body = self.world.arm_bodies[arm_spec.name]
            arm = SimArm(self.world, arm_spec.name, body, kin, safety, arm_spec.base.se3())
            arm.reset_joints(np.asarray(model.home))
            self.arms[arm_spec.name] = arm
            self.grippers[arm_spec.name] = SimGripper(
                self.world, arm_spec.name, body, model.finger_joints, model.finger_travel,
                arm_spec.gripper.force, arm=arm,
            )
        # Watched from before the scene settles: an object laid out touching a keep-out
        # fixture is a collision at t = 0, not a surprise later.
        self.keep_out: KeepOutMonitor | None = None
        if any(f.keep_out for f in spec.fixtures):
            self.keep_out = KeepOutMonitor(self.world, self._collided if collision_stop else _ignore)
            self.world.add_observer(self.keep_out)
        self.initial_poses = (
            self.world.randomize(np.random.default_rng(seed)) if seed is not None else None
        )
        if self.initial_poses is None:
            self.world.settle()
        self.world.frame_camera()  # in the GUI: the arm at home, the objects where they settled
        self.recorder = GifRecorder(self.world, record, camera) if record else None

    def _collided(self, fault: str) -> None:
        # one safety controller for the cell: a touch of a keep-out fixture stops every arm
        for arm in self.arms.values():
            if isinstance(arm, SimArm):
                arm.protective_stop(fault)

    def object_pose(self, name: str) -> SE3:
        return self.world.object_pose(name)

    def held_object(self, arm: str) -> str | None:
        gripper = self.grippers.get(arm)
        if not isinstance(gripper, SimGripper):
            raise ConfigError(f"unknown arm '{arm}'; the cell's arms are: {', '.join(self.grippers)}")
        body = gripper.held_object()
        for name, b in self.world.bodies.items():
            if b == body:
                return name
        return None

    def open_sampler(self, arm: str, rate: float, on_sample: SampleSink) -> SimSampler:
        """Sample ``arm`` every k physics steps, k = floor(240 Hz / rate) (the Backend hook for recordings)."""
        from robocell.sim.sampling import SimSampler

        sim_arm, gripper = self.arms.get(arm), self.grippers.get(arm)
        if not isinstance(sim_arm, SimArm) or not isinstance(gripper, SimGripper):
            raise ConfigError(f"unknown arm '{arm}'; the cell's arms are: {', '.join(self.arms)}")
        return SimSampler(self.world, sim_arm, gripper, rate, on_sample)

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the world started (robocell.core.capabilities.SimClock)."""
        return float(self.world.time)

    def wait(self, seconds: float) -> None:
        self.world.wait(seconds)

    def render(self, camera: str | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
        return render(self.world, camera, size)

    def close(self) -> None:
        if self.recorder is not None and self.recorder.frames:
            self.recorder.save()
            self.recorder.frames = []
        self.world.close()


def _ignore(fault: str) -> None:
    pass


def create(spec: CellSpec, address: str, **options: Any) -> SimBackend:
    """Factory used by :func:`robocell.core.backends.create_backend` for ``sim``.

    ``options`` are the keywords of :class:`SimBackend` (passed on unchecked: an unknown one is
    Python's TypeError naming it, a wrong type SimBackend's own error).
    """
    return SimBackend(spec, **options)
