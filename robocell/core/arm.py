"""The Arm and Gripper contracts every backend implements.

Motion planning lives here, once: :class:`Arm` turns ``move_joints``,
``move_pose`` and ``follow`` into a checked :class:`JointTrajectory` and hands
it to the backend's :meth:`Arm._execute`.  A backend (simulator, ZeroMQ client)
only has to execute trajectories, stream servo setpoints, stop and report
state, so every backend gets the same IK verification, the same safety checks
and the same "no silent undershoot" rule.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, overload, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike
from spatialmath import SE3

from robocell.errors import ConfigError, TrackingError
from robocell.motion.planning import check_follow_start, check_motion, plan_joints, plan_pose

if TYPE_CHECKING:
    from robocell.motion.kinematics import Kinematics
    from robocell.motion.safety import SafetyEnvelope
    from robocell.motion.trajectory import JointTrajectory


class Mode(enum.Enum):
    """What the arm is doing; faults latch until :meth:`Arm.reset`."""

    IDLE = "idle"
    MOVING = "moving"
    SERVO = "servo"
    STOPPED = "stopped"  # protective stop, latched
    FAULT = "fault"


@dataclass(frozen=True)
class ArmState:
    """A snapshot of the arm; poses in the world frame, SI units."""

    q: np.ndarray  # rad
    qd: np.ndarray  # rad/s
    tcp: SE3  # world frame
    mode: Mode
    faults: tuple[str, ...]
    timestamp: float  # s, backend clock (simulated time in simulation)


@dataclass(frozen=True)
class Tolerance:
    """How close a motion must end to its target before it counts as reached."""

    joint: float = 0.01  # rad, max over joints
    position: float = 0.003  # m, TCP
    rotation: float = 0.02  # rad, TCP


@dataclass(frozen=True)
class MotionResult:
    """How close a finished motion got; every blocking motion returns one."""

    joint_error: float  # rad, max |q - q_goal| over joints
    position_error: float  # m, TCP position
    rotation_error: float  # rad, TCP orientation
    duration: float  # s on the backend clock
    completed: bool  # False when cancelled or stopped
    q_goal: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def within(self, tol: Tolerance) -> bool:
        return (
            self.joint_error <= tol.joint
            and self.position_error <= tol.position
            and self.rotation_error <= tol.rotation
        )


@runtime_checkable
class MotionHandle(Protocol):
    """A motion in progress: wait on it or cancel it."""

    def done(self) -> bool:
        """True once the motion finished, was cancelled, or failed."""
        ...

    def wait(self, timeout: float | None = None) -> MotionResult:
        """Block until finished; returns how close it got (does not raise on tracking)."""
        ...

    def cancel(self) -> None:
        """Decelerate to a stop and end the motion (result.completed is False)."""
        ...


@runtime_checkable
class GripperHandle(Protocol):
    """A gripper opening or closing in progress: like :class:`MotionHandle`, but with no result.

    A gripper reports no tracking error: what it reached is read afterwards with
    :meth:`Gripper.width` and :meth:`Gripper.grasped`, so ``wait`` returns ``None``.
    """

    def done(self) -> bool:
        """True once the fingers settled (stopped on an object, or at their target)."""
        ...

    def wait(self, timeout: float | None = None) -> None:
        """Block until the fingers settled; raises MotionError when they do not within ``timeout``."""
        ...

    def cancel(self) -> None:
        """Stop the fingers where they are."""
        ...


class Arm(abc.ABC):
    """A robot arm: state, checked motions, streaming servo and stop.

    Subclasses provide the backend hooks (``state``, ``_execute``, ``servo``,
    ``stop``, ``reset``); everything else is shared.
    """

    def __init__(
        self, name: str, kinematics: Kinematics, safety: SafetyEnvelope, base: SE3
    ) -> None:
        self.name = name
        self.kinematics = kinematics
        self.safety = safety
        self.base = base  # base frame in world
        self._base_inv = base.inv()
        self._base_m = np.asarray(base.A, dtype=float)
        self.tolerance = Tolerance()

    # ---- backend hooks -------------------------------------------------
    @abc.abstractmethod
    def state(self) -> ArmState:
        """The latest state of the arm."""

    @abc.abstractmethod
    def _execute(self, traj: JointTrajectory, q_goal: np.ndarray) -> MotionHandle:
        """Start executing a checked trajectory; return at once."""

    @abc.abstractmethod
    def servo(self, q: ArrayLike) -> None:
        """Stream one joint setpoint (applied at the next control tick)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop any motion now with a controlled deceleration."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Clear a latched protective stop."""

    # ---- shared motion API ---------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.kinematics.joint_names

    def tcp_pose(self, q: ArrayLike | None = None) -> SE3:
        """TCP pose in the world frame (current, or at configuration ``q``)."""
        if q is None:
            return self.state().tcp
        return self.base * self.kinematics.fk(np.asarray(q, dtype=float))

    def ik(self, pose: SE3, q_seed: ArrayLike | None = None, *, pos_tol: float = 1e-3,
           rot_tol: float = 1e-2) -> np.ndarray:
        """Verified IK for a world-frame TCP pose (raises UnreachableError).

        ``pos_tol`` (m) and ``rot_tol`` (rad) bound the verified error; dense paths ask for
        tighter ones, so that the solutions' jitter does not turn into joint accelerations.
        """
        seed = self.state().q if q_seed is None else np.asarray(q_seed, dtype=float)
        q = self.kinematics.ik(self._base_inv * pose, seed, pos_tol=pos_tol, rot_tol=rot_tol)
        self.safety.check_joints(q, what=f"IK solution for arm '{self.name}'")
        return q

    # The overloads say what ``wait`` selects: a finished MotionResult, or a MotionHandle to wait on.
    @overload
    def move_joints(self, q: ArrayLike, *, wait: Literal[True] = ..., speed: float = ...) -> MotionResult: ...
    @overload
    def move_joints(self, q: ArrayLike, *, wait: Literal[False], speed: float = ...) -> MotionHandle: ...
    @overload
    def move_joints(self, q: ArrayLike, *, wait: bool, speed: float = ...) -> MotionResult | MotionHandle: ...

    def move_joints(
        self, q: ArrayLike, *, wait: bool = True, speed: float = 1.0
    ) -> MotionResult | MotionHandle:
        """Joint-interpolated move to ``q`` (rad) within speed/accel limits.

        ``speed`` scales the envelope's joint speed limit (0 < speed <= 1).
        """
        q_goal = self._as_joints(q, "move_joints target")
        traj = plan_joints(self.kinematics, self.safety, self._base_m, self.state().q, q_goal, speed)
        return self._run(traj, q_goal, wait)

    @overload
    def move_pose(self, pose: SE3, *, linear: bool = ..., wait: Literal[True] = ...,
                  speed: float = ...) -> MotionResult: ...
    @overload
    def move_pose(self, pose: SE3, *, linear: bool = ..., wait: Literal[False], speed: float = ...) -> MotionHandle: ...
    @overload
    def move_pose(self, pose: SE3, *, linear: bool = ..., wait: bool,
                  speed: float = ...) -> MotionResult | MotionHandle: ...

    def move_pose(
        self, pose: SE3, *, linear: bool = False, wait: bool = True, speed: float = 1.0
    ) -> MotionResult | MotionHandle:
        """Move the TCP to a world-frame pose, joint-interpolated or in a straight line."""
        if not isinstance(pose, SE3):
            raise ConfigError(f"move_pose needs a spatialmath SE3 pose, got {type(pose).__name__}")
        traj, q_goal = plan_pose(self.kinematics, self.safety, self._base_m, self.state().q, pose,
                                 linear=linear, speed=speed)
        return self._run(traj, q_goal, wait)

    @overload
    def follow(self, traj: JointTrajectory, *, wait: Literal[True] = ...) -> MotionResult: ...
    @overload
    def follow(self, traj: JointTrajectory, *, wait: Literal[False]) -> MotionHandle: ...
    @overload
    def follow(self, traj: JointTrajectory, *, wait: bool) -> MotionResult | MotionHandle: ...

    def follow(self, traj: JointTrajectory, *, wait: bool = True) -> MotionResult | MotionHandle:
        """Follow a timed joint trajectory; it must start near the current state."""
        check_follow_start(traj, self.state().q)
        return self._run(traj, traj.q[-1].copy(), wait)

    # ---- helpers -------------------------------------------------------
    def _run(
        self, traj: JointTrajectory, q_goal: np.ndarray, wait: bool
    ) -> MotionResult | MotionHandle:
        check_motion(self.kinematics, self.safety, self._base_m, traj)
        return self._await(self._execute(traj, q_goal), wait)

    @overload
    def _await(self, handle: MotionHandle, wait: Literal[True]) -> MotionResult: ...
    @overload
    def _await(self, handle: MotionHandle, wait: Literal[False]) -> MotionHandle: ...
    @overload
    def _await(self, handle: MotionHandle, wait: bool) -> MotionResult | MotionHandle: ...

    def _await(self, handle: MotionHandle, wait: bool) -> MotionResult | MotionHandle:
        """Return the handle, or wait for it and apply the no-silent-undershoot rule."""
        if not wait:
            return handle
        result = handle.wait()
        self.check_result(result)
        return result

    def check_result(self, result: MotionResult) -> None:
        """Raise if a finished motion ended outside tolerance (no silent undershoot)."""
        if not result.completed:
            from robocell.errors import MotionCancelled

            # the faults say why (a collision, the watchdog, a requested stop): the first thing to fix
            faults = self.state().faults
            why = f"; the arm reports: {'; '.join(faults)}" if faults else ""
            raise MotionCancelled(
                f"arm '{self.name}': the motion was stopped before it finished "
                f"(ended {result.joint_error:.4f} rad from its goal){why}"
            )
        if not result.within(self.tolerance):
            tol = self.tolerance
            raise TrackingError(
                f"arm '{self.name}' ended {result.position_error * 1000:.1f} mm / "
                f"{result.rotation_error:.3f} rad / {result.joint_error:.4f} rad (joints) from its target; "
                f"tolerance is {tol.position * 1000:.1f} mm / {tol.rotation:.3f} rad / {tol.joint:.4f} rad. "
                "Something blocked the arm or the load is too heavy; check for collisions"
            )

    def _as_joints(self, q: ArrayLike, what: str) -> np.ndarray:
        arr = np.asarray(q, dtype=float)
        if arr.shape != (len(self.joint_names),):
            raise ConfigError(
                f"{what}: expected {len(self.joint_names)} joint values "
                f"({', '.join(self.joint_names)}), got shape {arr.shape}"
            )
        return arr

    def result_for(self, q_goal: np.ndarray, q_end: np.ndarray, duration: float, completed: bool) -> MotionResult:
        """Compare where the arm ended with where it was sent (joint and TCP error)."""
        goal = self.kinematics.fk(q_goal)
        end = self.kinematics.fk(q_end)
        pos, rot = self.kinematics.pose_error(goal, end)
        return MotionResult(
            joint_error=float(np.max(np.abs(q_end - q_goal))) if len(q_goal) else 0.0,
            position_error=pos,
            rotation_error=rot,
            duration=duration,
            completed=completed,
            q_goal=q_goal,
        )


class Gripper(abc.ABC):
    """A parallel gripper: open, close with a force, report width and grasp."""

    max_width: float

    # wait=True (the default) returns once the fingers settled; wait=False returns a handle at once.
    # Implementations repeat these overloads (mypy checks each one against the base class).
    @overload
    def open(self, width: float | None = ..., *, wait: Literal[True] = ...) -> None: ...
    @overload
    def open(self, width: float | None = ..., *, wait: Literal[False]) -> GripperHandle: ...
    @overload
    def open(self, width: float | None = ..., *, wait: bool) -> GripperHandle | None: ...

    @abc.abstractmethod
    def open(self, width: float | None = None, *, wait: bool = True) -> GripperHandle | None:
        """Open to ``width`` (m; default fully open)."""

    @overload
    def close(self, force: float | None = ..., *, wait: Literal[True] = ...) -> None: ...
    @overload
    def close(self, force: float | None = ..., *, wait: Literal[False]) -> GripperHandle: ...
    @overload
    def close(self, force: float | None = ..., *, wait: bool) -> GripperHandle | None: ...

    @abc.abstractmethod
    def close(self, force: float | None = None, *, wait: bool = True) -> GripperHandle | None:
        """Close with ``force`` (N per finger) until the fingers stop."""

    @abc.abstractmethod
    def width(self) -> float:
        """Current opening between the fingers, m."""

    @abc.abstractmethod
    def grasped(self) -> bool:
        """True when the fingers stopped on an object (width and contact), as a real gripper reports."""

