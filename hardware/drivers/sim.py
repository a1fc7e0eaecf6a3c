"""The ``sim`` driver: a PyBullet cell inside the server process, paced in real time.

The server ticks at :attr:`DriverInfo.control_rate` (1 kHz); physics steps at
its own 240 Hz whenever simulated time falls behind the wall clock, so a
remote client sees the timing a real arm would give it.  Joint setpoints go
to PyBullet's position motors; nothing here plans or checks (the server does).
"""

from __future__ import annotations

import collections
import sys
import time
from typing import Any

import numpy as np

from robocell.cellfile.spec import CellSpec
from robocell.errors import ConfigError
from robocell.hardware.driver import DriverInfo, DriverState
from robocell.sim.arm import SimArm
from robocell.sim.backend import SimBackend
from robocell.sim.gripper import SimGripper

MAX_CATCH_UP = 8  # physics steps per tick at most: a stalled host slows time instead of bursting


class Pacer:
    """Absolute-schedule period waiting with an accurate sleep.

    A busy-wait would hold the GIL and starve the server's command thread, so
    the waiting thread asks Linux for a 1 us timer slack instead (the default
    50 us slack is what makes ``time.sleep`` overshoot); one period late or
    more, the schedule restarts rather than bursting to catch up.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self.next = time.perf_counter() + period
        self.overruns = 0
        self._slack_set = False

    def wait(self) -> None:
        if not self._slack_set:
            _fine_timer_slack()  # per thread: set from the thread that waits
            self._slack_set = True
        now = time.perf_counter()
        if now > self.next + self.period:
            self.overruns += 1
            self.next = now + self.period
            return
        gap = self.next - now
        if gap > 0:
            time.sleep(gap)
        self.next += self.period


def _fine_timer_slack() -> None:
    """prctl(PR_SET_TIMERSLACK, 1 ns) for the calling thread (Linux only; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(29, 1, 0, 0, 0)  # 29 = PR_SET_TIMERSLACK


class SimDriver:
    """Drives one arm of a simulated cell (``robocell serve --driver sim``)."""

    def __init__(self, spec: CellSpec, arm: str, *, seed: int | None = None, gui: bool = False,
                 rate: float = 1000.0, **options: Any) -> None:
        if options:
            raise ConfigError(f"sim driver: unknown option(s) {', '.join(options)}; known: seed, gui, rate")
        if not (np.isfinite(rate) and 50.0 <= rate <= 2000.0):
            raise ConfigError(f"sim driver: rate = {rate} Hz is outside [50, 2000] Hz")
        # the server is the safety authority: a keep-out collision is reported to it as a
        # hardware fault (read()), and its control loop stops the arm and latches the fault
        self.backend = SimBackend(spec, seed=seed, gui=gui, collision_stop=False)
        self._collisions_seen = len(self.backend.world.collisions)
        if arm not in self.backend.arms:
            self.backend.close()
            raise ConfigError(f"the cell has no arm '{arm}'; its arms are: {', '.join(self.backend.arms)}")
        self.arm_name = arm
        sim_arm = self.backend.arms[arm]
        gripper = self.backend.grippers[arm]
        assert isinstance(sim_arm, SimArm) and isinstance(gripper, SimGripper)
        self.arm = sim_arm
        self.grip = gripper
        self.world = self.backend.world
        kin = sim_arm.kinematics
        self.info = DriverInfo(
            joint_names=kin.joint_names,
            lower=np.asarray(kin.urdf_lower, dtype=float),
            upper=np.asarray(kin.urdf_upper, dtype=float),
            control_rate=rate,
            gripper_max_width=gripper.max_width,
            vendor="robocell PyBullet simulator",
        )
        self._pacer = Pacer(1.0 / rate)
        self._start = time.perf_counter()
        self._sim_start = self.world.time
        self._gripper_motion: Any = None
        self._commands: collections.deque[tuple[float, np.ndarray, np.ndarray]] = collections.deque(maxlen=256)
        self._applied: tuple[float, np.ndarray, np.ndarray] | None = None

    def _apply_command_for(self, t: float) -> None:
        """Set the motors to the newest setpoint stamped at or before simulated time ``t``."""
        chosen = None
        while self._commands and self._commands[0][0] <= t + 1e-9:
            chosen = self._commands.popleft()
        if chosen is None and self._applied is None and self._commands:
            chosen = self._commands.popleft()
        if chosen is not None:
            self._applied = chosen
            self.arm.command_joints(chosen[1], chosen[2])

    def read(self) -> DriverState:
        q, qd = self.arm.read_joints()
        # a collision is an event: reported in one reading, latched by the server until reset
        faults: tuple[str, ...] = ()
        if len(self.world.collisions) > self._collisions_seen:  # read at 1 kHz: nothing to build most ticks
            hits = self.world.collisions[self._collisions_seen:]
            self._collisions_seen += len(hits)
            faults = tuple(f"collision: {what} touched keep-out fixture '{fx}'" for _, what, fx in hits)
        return DriverState(q=q, qd=qd, gripper_width=self.grip.width(), grasped=self.grip.grasped(),
                           faults=faults)

    def command(self, q: np.ndarray, qd: np.ndarray) -> None:
        # stamped with the simulated time it belongs to: physics that runs late (a loaded
        # host) still applies each setpoint at its own time, as the real arm would have
        self._commands.append((self._sim_start + (time.perf_counter() - self._start), q, qd))

    def wait_period(self) -> None:
        self._pacer.wait()
        # step physics until simulated time catches up with the wall clock
        due = self._sim_start + (time.perf_counter() - self._start)
        steps = 0
        while self.world.time + 0.5 * self.world.timestep <= due and steps < MAX_CATCH_UP:
            self._apply_command_for(self.world.time)
            self.world.step(1)
            steps += 1
        if steps == MAX_CATCH_UP:
            # the host could not keep up: let simulated time lag rather than burst later
            sim_start = self.world.time - (time.perf_counter() - self._start)
            # Setpoints still queued were stamped on the old clock, up to the whole lag ahead of
            # the new one: left as they are, the oldest sat at the head of the queue and held every
            # newer setpoint back until simulated time reached its stamp (the arm froze, then
            # jumped). Moved onto the new clock they keep their order and their spacing.
            shift = self._sim_start - sim_start
            if shift > 0.0 and self._commands:
                self._commands = collections.deque(((t - shift, q, qd) for t, q, qd in self._commands),
                                                   maxlen=self._commands.maxlen)
            self._sim_start = sim_start

    def gripper(self, width: float | None, force: float | None) -> None:
        if width is not None:
            self._gripper_motion = self.grip.open(width, wait=False)
        else:
            self._gripper_motion = self.grip.close(force, wait=False)

    def gripper_busy(self) -> bool:
        m = self._gripper_motion
        return m is not None and not m.finished

    def stop(self) -> None:
        q, _ = self.arm.read_joints()
        self._commands.clear()
        self.arm.command_joints(q)

    def object_poses(self) -> dict[str, np.ndarray]:
        return {o.name: np.asarray(self.world.object_pose(o.name).A) for o in self.world.spec.objects}

    def held_object(self) -> str | None:
        return self.backend.held_object(self.arm_name)

    def close(self) -> None:
        self.backend.close()
