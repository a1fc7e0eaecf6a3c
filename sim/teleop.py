"""Teleoperation of a simulated arm: an input source gives a TCP target, the loop servos towards it.

Each physics step the loop reads the source (a target pose, tool pointing
down, and a gripper command), moves the commanded TCP towards the target at
most ``max_speed`` m/s and ``max_yaw_rate`` rad/s (an operator's slider jump
must not become an arm jump), solves verified IK seeded with the last
setpoint, limits every joint's step to the envelope's speed, and streams it
with ``arm.servo``.  A target the arm cannot reach is not followed: the arm
holds its last good setpoint until the target comes back into reach.

The input is abstracted (:class:`TeleopSource`): :class:`SliderSource` reads
PyBullet's debug sliders in the GUI (they do not exist in DIRECT mode), and
:class:`ScriptedSource` replays a list of targets, which is how tests drive
the loop headless.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from spatialmath import SE3

from robocell.errors import BackendError, ConfigError, KinematicsError, SafetyViolation

if TYPE_CHECKING:
    from robocell.core.cell import Cell
    from robocell.sim.world import SimWorld

JOINT_SPEED_SHARE = 0.9  # of the envelope's joint speed limit, per servo step


@dataclass(frozen=True)
class TeleopCommand:
    """What the operator wants now: a TCP position (m, world), a heading (rad) and the gripper state."""

    position: np.ndarray
    yaw: float
    close: bool

    def pose(self) -> SE3:
        return SE3.Trans(self.position) * SE3.Rz(self.yaw) * SE3.Rx(math.pi)


class TeleopSource(Protocol):
    def read(self, t: float) -> TeleopCommand | None:
        """The command at ``t`` s since teleoperation began, or None once the operator is done."""
        ...


class ScriptedSource:
    """Replays ``(t, command)`` keyframes: each command holds from its time on; done after ``end`` s."""

    def __init__(self, keyframes: Sequence[tuple[float, TeleopCommand]], end: float) -> None:
        if not keyframes or any(b[0] < a[0] for a, b in zip(keyframes, keyframes[1:])):
            raise ConfigError("a scripted teleoperation needs keyframes in time order")
        self.keyframes = list(keyframes)
        self.end = end

    def read(self, t: float) -> TeleopCommand | None:
        if t >= self.end:
            return None
        current = self.keyframes[0][1]
        for t_k, cmd in self.keyframes:
            if t_k > t:
                break
            current = cmd
        return current


class SliderSource:
    """PyBullet GUI sliders for x, y, z, yaw and two buttons: 'gripper' toggles, 'finish' ends."""

    def __init__(self, world: SimWorld, start: SE3, lower: Sequence[float] | np.ndarray,
                 upper: Sequence[float] | np.ndarray) -> None:
        pb, c = world.pb, world.client
        if pb.getConnectionInfo(physicsClientId=c).get("connectionMethod") != pb.GUI:
            raise BackendError("teleoperation sliders need the PyBullet GUI; start the cell with --gui")
        self.world = world
        world.show_panel()  # the window keeps the panel hidden until sliders need it
        p = np.asarray(start.t, dtype=float)
        x = start.R[:, 0]
        self._ids = [pb.addUserDebugParameter(name, float(lo), float(hi), float(np.clip(v, lo, hi)),
                                              physicsClientId=c)
                     for name, lo, hi, v in (("x (m)", lower[0], upper[0], p[0]), ("y (m)", lower[1], upper[1], p[1]),
                                             ("z (m)", max(lower[2], 0.0), upper[2], p[2]),
                                             ("yaw (rad)", -math.pi, math.pi, math.atan2(x[1], x[0])))]
        # min > max makes a button; its value counts the clicks
        self._gripper = pb.addUserDebugParameter("gripper open/close", 1, 0, 0, physicsClientId=c)
        self._finish = pb.addUserDebugParameter("finish recording", 1, 0, 0, physicsClientId=c)

    def read(self, t: float) -> TeleopCommand | None:
        pb, c = self.world.pb, self.world.client
        if not pb.isConnected(physicsClientId=c):
            return None  # the window was closed
        try:
            if pb.readUserDebugParameter(self._finish, physicsClientId=c) >= 1:
                return None
            x, y, z, yaw = (pb.readUserDebugParameter(i, physicsClientId=c) for i in self._ids)
            clicks = pb.readUserDebugParameter(self._gripper, physicsClientId=c)
        except pb.error:
            return None  # the window closed between the check and the read
        return TeleopCommand(np.array([x, y, z]), float(yaw), int(clicks) % 2 == 1)


@dataclass
class TeleopStats:
    steps: int = 0
    unreachable: int = 0  # steps on which the target was out of reach (the arm held)
    gripper_commands: int = 0


def teleoperate(cell: Cell, source: TeleopSource, *, arm: str | None = None, duration: float | None = None,
                max_speed: float = 0.25, max_yaw_rate: float = 1.0) -> TeleopStats:
    """Run the teleoperation loop on a simulated cell until the source is done or ``duration`` s pass."""
    world: SimWorld | None = getattr(cell.backend, "world", None)
    if world is None:
        raise ConfigError(f"teleoperation drives the simulator; backend '{cell.address}' is not one "
                          "(on hardware, free-drive the arm and record with `robocell record --backend`)")
    if duration is not None and not duration > 0:
        raise ConfigError(f"duration = {duration} s must be > 0")
    the_arm = cell.arm(arm)
    gripper = cell.gripper(arm)
    dt = world.timestep
    state = the_arm.state()
    q = state.q.copy()
    pos = np.asarray(state.tcp.t, dtype=float)
    x = state.tcp.R[:, 0]
    yaw = math.atan2(x[1], x[0])
    closed = False
    step_max = the_arm.safety.max_speed * JOINT_SPEED_SHARE * dt
    stats = TeleopStats()
    t0 = world.time
    while duration is None or world.time - t0 < duration:
        cmd = source.read(world.time - t0)
        if cmd is None:
            break
        if cmd.close != closed:
            closed = cmd.close
            (gripper.close if closed else gripper.open)(wait=False)
            stats.gripper_commands += 1
        # move the commanded TCP towards the target within the speed limits
        d = np.asarray(cmd.position, dtype=float) - pos
        dist = float(np.linalg.norm(d))
        new_pos = pos + d * min(1.0, max_speed * dt / dist) if dist > 1e-9 else pos
        dyaw = (cmd.yaw - yaw + math.pi) % (2 * math.pi) - math.pi
        new_yaw = yaw + float(np.clip(dyaw, -max_yaw_rate * dt, max_yaw_rate * dt))
        if dist > 1e-9 or abs(dyaw) > 1e-9:
            try:
                target = SE3.Trans(new_pos) * SE3.Rz(new_yaw) * SE3.Rx(math.pi)
                the_arm.safety.check_tcp(new_pos, what="teleoperation target")
                q_goal = the_arm.ik(target, q_seed=q)
                pos, yaw = new_pos, new_yaw
                q = q + np.clip(q_goal - q, -step_max, step_max)
            except (KinematicsError, SafetyViolation):
                stats.unreachable += 1  # hold: the operator brings the target back into reach
        the_arm.servo(q)
        world.step(1)
        stats.steps += 1
    return stats


__all__ = ["ScriptedSource", "SliderSource", "TeleopCommand", "TeleopSource", "TeleopStats", "teleoperate"]
