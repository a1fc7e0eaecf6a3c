"""Sampling a simulated arm for recordings, inside the stepping loop.

PyBullet is not thread-safe, and simulated time only passes while something
steps the world, so the sampler is a world observer: every ``k`` physics
steps it reads the arm and the gripper.  Samples are therefore taken at
exact simulated times, the same for the same seed and script whatever the
host's load.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from robocell.errors import ConfigError

if TYPE_CHECKING:
    from robocell.recording.recorder import SampleSink
    from robocell.sim.arm import SimArm
    from robocell.sim.gripper import SimGripper
    from robocell.sim.world import SimWorld


class SimSampler:
    """Calls ``on_sample`` now and then every ``k`` steps, ``k = floor(physics rate / rate)``."""

    def __init__(self, world: SimWorld, arm: SimArm, gripper: SimGripper, rate: float,
                 on_sample: SampleSink) -> None:
        physics_rate = 1.0 / world.timestep
        # a small epsilon: 240 / 120 must give 2 steps, not 1 by rounding
        k = math.floor(physics_rate / rate + 1e-9)
        if k < 1:
            raise ConfigError(f"the simulator steps at {physics_rate:g} Hz; record at {physics_rate:g} Hz or less "
                              f"(asked {rate:g} Hz)")
        self.world = world
        self.arm = arm
        self.gripper = gripper
        self.every = k
        self.rate = physics_rate / k  # >= the rate asked for: 120 Hz for 100 Hz
        self.on_sample = on_sample
        self.lost = 0  # never: sampling is part of stepping
        self._count = 0
        self._sample()
        world.add_observer(self._observe)

    def _observe(self, world: SimWorld) -> None:
        self._count += 1
        if self._count == self.every:
            self._count = 0
            self._sample()

    def _sample(self) -> None:
        q, tcp = self.arm.measure()
        g = self.gripper
        self.on_sample(self.world.time, q, tcp, g.width(), g.grasped())

    def close(self) -> None:
        self.world.remove_observer(self._observe)
