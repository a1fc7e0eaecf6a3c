"""SimArm: the core Arm contract on a PyBullet arm, position-controlled joints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from spatialmath import SE3

from robocell.core.arm import Arm, ArmState, Mode, MotionResult
from robocell.errors import ConfigError, MotionError, ProtectiveStop
from robocell.motion.trajectory import JointTrajectory, plan_stop

from robocell.sim.world import Controller, SimWorld, se3_from_pq

if TYPE_CHECKING:
    from robocell.motion.kinematics import Kinematics
    from robocell.motion.safety import SafetyEnvelope

SETTLE_TIMEOUT = 1.0  # s after the trajectory ends before a motion is declared finished anyway
SETTLE_SPEED = 0.02  # rad/s: below this on every joint the arm counts as at rest


def joint_indices(world: SimWorld, body: int, names: tuple[str, ...]) -> list[int]:
    """PyBullet joint indices for joint names, with a clear error if one is missing."""
    pb = world.pb
    by_name = {
        pb.getJointInfo(body, j, physicsClientId=world.client)[1].decode(): j
        for j in range(pb.getNumJoints(body, physicsClientId=world.client))
    }
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(
            f"the URDF has no joint(s) {', '.join(missing)}; its joints are {', '.join(by_name)}"
        )
    return [by_name[n] for n in names]


def link_index(world: SimWorld, body: int, link: str) -> int:
    pb = world.pb
    for j in range(pb.getNumJoints(body, physicsClientId=world.client)):
        if pb.getJointInfo(body, j, physicsClientId=world.client)[12].decode() == link:
            return j
    raise ConfigError(f"the URDF has no link '{link}'")


class SimMotion:
    """A trajectory being executed by a :class:`SimArm` (a MotionHandle)."""

    def __init__(self, arm: SimArm, traj: JointTrajectory, q_goal: np.ndarray) -> None:
        self.arm = arm
        self.traj = traj
        self.q_goal = q_goal
        self.t0 = arm.world.time
        self.result: MotionResult | None = None
        self.cancelled = False
        # Resample once at the physics rate: the control tick then only indexes a list,
        # which keeps robocell's per-step cost near raw PyBullet's.
        dt = arm.world.timestep
        times = np.arange(0.0, traj.duration + 0.5 * dt, dt)
        q = np.column_stack([np.interp(times, traj.t, traj.q[:, j]) for j in range(traj.q.shape[1])])
        qd = np.column_stack([np.interp(times, traj.t, traj.qd[:, j]) for j in range(traj.q.shape[1])])
        self.q_steps: list[list[float]] = q.tolist()
        self.qd_steps: list[list[float]] = qd.tolist()
        self.tick = 0

    def done(self) -> bool:
        # Simulated time only passes while someone waits; polling counts as waiting
        # one tick, so `while not h.done(): ...` behaves as on hardware.
        if self.result is None:
            self.arm.world.step(1)
        return self.result is not None

    def wait(self, timeout: float | None = None) -> MotionResult:
        limit = self.traj.duration + SETTLE_TIMEOUT + 1.0 if timeout is None else timeout
        t_end = self.arm.world.time + limit
        while self.result is None:
            if self.arm.world.time > t_end:
                raise MotionError(
                    f"arm '{self.arm.name}': motion did not finish within {limit:.2f} s of simulated time"
                )
            self.arm.world.step(1)
        return self.result

    def cancel(self) -> None:
        if self.result is None and self.arm._motion is self:
            self.arm.stop()

    def _finish(self, q_end: np.ndarray, completed: bool) -> None:
        self.result = self.arm.result_for(self.q_goal, q_end, self.arm.world.time - self.t0, completed)


class SimArm(Arm):
    """An arm simulated in PyBullet; same contract as the hardware client."""

    def __init__(
        self,
        world: SimWorld,
        name: str,
        body: int,
        kinematics: Kinematics,
        safety: SafetyEnvelope,
        base: SE3,
    ) -> None:
        super().__init__(name, kinematics, safety, base)
        self.world = world
        self.body = body
        self._joints = joint_indices(world, body, kinematics.joint_names)
        self._tcp_link = link_index(world, body, kinematics.tcp_link)
        self._forces = [
            world.pb.getJointInfo(body, j, physicsClientId=world.client)[10] for j in self._joints
        ]
        self._motion: SimMotion | None = None
        self._stopping: SimMotion | None = None  # deceleration after stop()/cancel
        self._servo_target: np.ndarray | None = None
        self._mode = Mode.IDLE
        self._faults: list[str] = []
        world.add_controller(Controller(self._pre_step))

    # ---- configuration ---------------------------------------------------
    def reset_joints(self, q: ArrayLike) -> None:
        """Teleport the joints (scene set-up only) and hold them there."""
        q = self._as_joints(q, "reset_joints")
        pb, c = self.world.pb, self.world.client
        for j, v in zip(self._joints, q):
            pb.resetJointState(self.body, j, float(v), 0.0, physicsClientId=c)
        self.command_joints(q)

    # ---- contract ----------------------------------------------------------
    def state(self) -> ArmState:
        q, qd = self.read_joints()
        pb, c = self.world.pb, self.world.client
        ls = pb.getLinkState(self.body, self._tcp_link, computeForwardKinematics=True, physicsClientId=c)
        return ArmState(
            q=q, qd=qd, tcp=se3_from_pq(ls[4], ls[5]), mode=self._mode,
            faults=tuple(self._faults), timestamp=self.world.time,
        )

    def _execute(self, traj: JointTrajectory, q_goal: np.ndarray) -> SimMotion:
        if self._mode is Mode.STOPPED:
            raise ProtectiveStop(
                f"arm '{self.name}' is in a latched protective stop ({'; '.join(self._faults) or 'stop'}); "
                "call reset() before moving"
            )
        if self._motion is not None and self._motion.result is None:
            raise MotionError(
                f"arm '{self.name}' is already executing a motion; wait for it or cancel it first"
            )
        self._servo_target = None
        self._motion = SimMotion(self, traj, q_goal)
        self._mode = Mode.MOVING
        return self._motion

    def servo(self, q: ArrayLike) -> None:
        if self._mode is Mode.STOPPED:
            raise ProtectiveStop(f"arm '{self.name}' is stopped; call reset() before servoing")
        if self._motion is not None and self._motion.result is None:
            raise MotionError(f"arm '{self.name}' is executing a motion; cancel it before servoing")
        q = self._as_joints(q, "servo setpoint")
        self.safety.check_joints(q, what="servo setpoint")
        last = self._servo_target if self._servo_target is not None else self.read_joints()[0]
        self.safety.check_step(last, q, self.world.timestep)
        self._servo_target = q
        self._mode = Mode.SERVO

    def stop(self) -> None:
        """Decelerate within the acceleration limit, then hold; the stop latches."""
        self.protective_stop("stop requested")

    def protective_stop(self, fault: str) -> None:
        """Latch a protective stop for ``fault`` (a collision, a requested stop).

        The running motion ends with ``completed=False`` (its blocking call raises
        with the fault) and the arm decelerates within its acceleration limit, as
        for :meth:`stop`.  An arm already stopped keeps decelerating and only
        records the further fault: every reason shows until :meth:`reset`.
        """
        if self._mode is not Mode.STOPPED:
            q, qd = self.read_joints()
            running = self._motion if self._motion is not None and self._motion.result is None else None
            decel = plan_stop(q, qd, self.safety.max_accel)
            self._servo_target = None
            self._stopping = SimMotion(self, decel, decel.q[-1])
            self._faults = []
            self._mode = Mode.STOPPED
            if running is not None:
                running._finish(q, completed=False)
            self._motion = None
        if fault not in self._faults:
            self._faults.append(fault)

    @property
    def stopped(self) -> bool:
        """True while a protective stop is latched (until :meth:`reset`)."""
        return self._mode is Mode.STOPPED

    def reset(self) -> None:
        if self._stopping is not None and self._stopping.result is None:
            self._stopping.wait()
        self._faults = []
        self._mode = Mode.IDLE

    # ---- control loop ----------------------------------------------------------
    def read_joints(self) -> tuple[np.ndarray, np.ndarray]:
        """Low-level: measured joint positions (rad) and speeds (rad/s)."""
        states = self.world.pb.getJointStates(self.body, self._joints, physicsClientId=self.world.client)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def measure(self) -> tuple[list[float], np.ndarray]:
        """Low-level, for samplers: joint positions (rad) and the 4x4 world TCP pose, no SE3 objects."""
        pb, c = self.world.pb, self.world.client
        q = [s[0] for s in pb.getJointStates(self.body, self._joints, physicsClientId=c)]
        ls = pb.getLinkState(self.body, self._tcp_link, computeForwardKinematics=True, physicsClientId=c)
        m = np.empty((4, 4))
        m[:3, :3] = np.reshape(pb.getMatrixFromQuaternion(ls[5]), (3, 3))
        m[:3, 3] = ls[4]
        m[3] = (0.0, 0.0, 0.0, 1.0)
        return q, m

    def command_joints(self, q: np.ndarray, qd: np.ndarray | None = None) -> None:
        """Low-level: set the joint position targets (and feed-forward speeds) for the next steps."""
        self.world.pb.setJointMotorControlArray(
            self.body, self._joints, self.world.pb.POSITION_CONTROL,
            targetPositions=list(map(float, q)),
            targetVelocities=[0.0] * len(q) if qd is None else list(map(float, qd)),
            forces=self._forces, physicsClientId=self.world.client,
        )

    def _pre_step(self, t: float) -> None:
        m = self._motion if self._motion is not None else self._stopping
        if m is not None and m.result is None:
            self._track(m, t)
        elif self._servo_target is not None:
            self.command_joints(self._servo_target)

    def _track(self, m: SimMotion, t: float) -> None:
        k = m.tick
        m.tick += 1
        if k < len(m.q_steps):
            self.world.pb.setJointMotorControlArray(
                self.body, self._joints, self.world.pb.POSITION_CONTROL,
                targetPositions=m.q_steps[k], targetVelocities=m.qd_steps[k],
                forces=self._forces, physicsClientId=self.world.client,
            )
            return
        elapsed = t - m.t0
        self.command_joints(m.q_goal)
        q, qd = self.read_joints()  # joint reads only while settling keeps stepping cheap
        at_rest = float(np.max(np.abs(qd))) < SETTLE_SPEED
        close = float(np.max(np.abs(q - m.q_goal))) < self.tolerance.joint * 0.25
        if (at_rest and close) or elapsed > m.traj.duration + SETTLE_TIMEOUT:
            m._finish(q, completed=m is not self._stopping)
            if m is self._motion:
                self._motion = None
                self._mode = Mode.IDLE
