"""SimGripper: a parallel gripper whose fingers hold objects by contact and friction.

Nothing is welded or teleported: closing drives both finger joints towards
zero with a bounded motor force, and an object stays in the hand only as long
as friction at the finger pads carries it.  A grasp is detected the way a real
gripper does it: the fingers stopped short of closing fully.  In simulation we
additionally know *which* body the pads touch (:meth:`SimGripper.held_object`).
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np

from robocell.core.arm import Gripper
from robocell.errors import ConfigError, MotionError, ProtectiveStop

from robocell.sim.arm import SimArm, joint_indices
from robocell.sim.world import Controller, SimWorld

FINGER_SPEED = 0.1  # m/s per finger, the Panda hand's rated speed is 0.1-0.2
SETTLE_TIMEOUT = 1.5  # s
EMPTY_WIDTH = 0.003  # m: fingers closer than this are closed on nothing


class GripperMotion:
    """An opening or closing in progress (a :class:`~robocell.core.arm.GripperHandle`)."""

    def __init__(self, gripper: SimGripper, target: float) -> None:
        self.gripper = gripper
        self.target = target
        self.t0 = gripper.world.time
        self.finished = False
        self._still = 0

    def done(self) -> bool:
        if not self.finished:
            self.gripper.world.step(1)
        return self.finished

    def wait(self, timeout: float | None = None) -> None:
        limit = SETTLE_TIMEOUT + 0.5 if timeout is None else timeout
        t_end = self.gripper.world.time + limit
        while not self.finished:
            if self.gripper.world.time > t_end:
                raise MotionError(f"gripper did not settle within {limit:.2f} s of simulated time")
            self.gripper.world.step(1)

    def cancel(self) -> None:
        if not self.finished:
            self.gripper._command(self.gripper.width() / 2, self.gripper.force)
            self.finished = True


class SimGripper(Gripper):
    """The fingers of one simulated arm."""

    def __init__(self, world: SimWorld, arm_name: str, body: int, finger_joints: tuple[str, ...],
                 finger_travel: float, force: float, arm: SimArm | None = None) -> None:
        self.world = world
        # The arm whose latched protective stop also holds the gripper (see _start, _pre_step).
        self.arm = arm
        self.arm_name = arm_name
        self.body = body
        self._fingers = joint_indices(world, body, finger_joints)
        self.finger_travel = finger_travel
        self.max_width = finger_travel * len(self._fingers)
        self.force = force
        self._motion: GripperMotion | None = None
        pb, c = world.pb, world.client
        for j in self._fingers:
            # finger pads: high friction and a torsional term so blocks do not spin out
            pb.changeDynamics(body, j, lateralFriction=1.2, spinningFriction=0.01, physicsClientId=c)
            pb.resetJointState(body, j, finger_travel, physicsClientId=c)
        if len(self._fingers) == 2:
            # Real parallel grippers couple their fingers mechanically (the Panda hand, the
            # Robotiq linkage). Two independent force-saturated fingers would let a held
            # object drift sideways between them, so couple them with a gear constraint.
            gear = pb.createConstraint(
                body, self._fingers[0], body, self._fingers[1], jointType=pb.JOINT_GEAR,
                jointAxis=[1, 0, 0], parentFramePosition=[0, 0, 0], childFramePosition=[0, 0, 0],
                physicsClientId=c,
            )
            pb.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=100, physicsClientId=c)
        self._command(finger_travel, force)
        world.add_controller(Controller(self._pre_step))

    @overload
    def open(self, width: float | None = ..., *, wait: Literal[True] = ...) -> None: ...
    @overload
    def open(self, width: float | None = ..., *, wait: Literal[False]) -> GripperMotion: ...
    @overload
    def open(self, width: float | None = ..., *, wait: bool) -> GripperMotion | None: ...

    def open(self, width: float | None = None, *, wait: bool = True) -> GripperMotion | None:
        w = self.max_width if width is None else float(width)
        if not (np.isfinite(w) and 0.0 <= w <= self.max_width + 1e-9):
            raise ConfigError(
                f"gripper of arm '{self.arm_name}': width = {width!r} m is outside [0, {self.max_width:.3f}] m"
            )
        return self._start(w / len(self._fingers), self.force, wait)

    @overload
    def close(self, force: float | None = ..., *, wait: Literal[True] = ...) -> None: ...
    @overload
    def close(self, force: float | None = ..., *, wait: Literal[False]) -> GripperMotion: ...
    @overload
    def close(self, force: float | None = ..., *, wait: bool) -> GripperMotion | None: ...

    def close(self, force: float | None = None, *, wait: bool = True) -> GripperMotion | None:
        f = self.force if force is None else float(force)
        if not (np.isfinite(f) and 0.0 < f <= 200.0):
            raise ConfigError(
                f"gripper of arm '{self.arm_name}': force = {force!r} N is outside (0, 200] N"
            )
        return self._start(0.0, f, wait)

    def width(self) -> float:
        states = self.world.pb.getJointStates(self.body, self._fingers, physicsClientId=self.world.client)
        return float(sum(s[0] for s in states))

    def grasped(self) -> bool:
        return self._is_closing() and self.width() > EMPTY_WIDTH

    def held_object(self) -> int | None:
        """Body id touched by every finger pad while closed on something, else None."""
        if not self.grasped():
            return None
        pb, c = self.world.pb, self.world.client
        touching: set[int] | None = None
        for j in self._fingers:
            bodies = {cp[2] for cp in pb.getContactPoints(bodyA=self.body, linkIndexA=j, physicsClientId=c)}
            bodies.discard(self.body)
            touching = bodies if touching is None else touching & bodies
        return min(touching) if touching else None

    # ---- control ---------------------------------------------------------------
    def _is_closing(self) -> bool:
        return self._target <= 1e-9

    def _start(self, target: float, force: float, wait: bool) -> GripperMotion | None:
        if self.arm is not None and self.arm.stopped:
            # nothing moves during a latched stop: opening over a wall would drop the load
            faults = "; ".join(self.arm.state().faults) or "stop"
            raise ProtectiveStop(
                f"gripper of arm '{self.arm_name}': the arm is in a latched protective stop ({faults}); "
                "call reset() on the arm before opening or closing the gripper"
            )
        self._command(target, force)
        self._motion = GripperMotion(self, target)
        if wait:
            self._motion.wait()
            return None
        return self._motion

    def _command(self, target: float, force: float) -> None:
        self._target = target
        self.force = force
        pb, c = self.world.pb, self.world.client
        for j in self._fingers:
            pb.setJointMotorControl2(
                self.body, j, pb.POSITION_CONTROL, targetPosition=target, force=force,
                maxVelocity=FINGER_SPEED, physicsClientId=c,
            )

    def _pre_step(self, t: float) -> None:
        m = self._motion
        if m is None or m.finished:
            return
        if self.arm is not None and self.arm.stopped and not self._is_closing():
            # A stop latched while opening: hold the width reached; releasing a load during a
            # stop could drop it anywhere.  A closing goes on: it only firms up a grasp, and a
            # half-closed hand would drop what it was taking.
            m.cancel()
            return
        states = self.world.pb.getJointStates(self.body, self._fingers, physicsClientId=self.world.client)
        speed = max(abs(s[1]) for s in states)
        at_target = all(abs(s[0] - m.target) < 5e-4 for s in states)
        # "still" for a few ticks: a closing gripper stops on the object, not at its target
        m._still = m._still + 1 if speed < 1e-3 else 0
        if at_target or m._still >= 10 or t - m.t0 > SETTLE_TIMEOUT:
            m.finished = True
