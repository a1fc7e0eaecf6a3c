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
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike
from spatialmath import SE3

from robocell.errors import ConfigError, TrackingError

if TYPE_CHECKING:
    from robocell.kinematics import Kinematics
    from robocell.safety import SafetyEnvelope
    from robocell.trajectory import JointTrajectory


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

    def ik(self, pose: SE3, q_seed: ArrayLike | None = None) -> np.ndarray:
        """Verified IK for a world-frame TCP pose (raises UnreachableError)."""
        seed = self.state().q if q_seed is None else np.asarray(q_seed, dtype=float)
        q = self.kinematics.ik(self._base_inv * pose, seed)
        self.safety.check_joints(q, what=f"IK solution for arm '{self.name}'")
        return q

    def move_joints(
        self, q: ArrayLike, *, wait: bool = True, speed: float = 1.0
    ) -> MotionResult | MotionHandle:
        """Joint-interpolated move to ``q`` (rad) within speed/accel limits.

        ``speed`` scales the envelope's joint speed limit (0 < speed <= 1).
        """
        from robocell.trajectory import plan_joint_move

        q_goal = self._as_joints(q, "move_joints target")
        self.safety.check_joints(q_goal, what="move_joints target")
        self._check_tcp(q_goal, "move_joints target")
        s = _speed_factor(speed)
        traj = plan_joint_move(
            self.state().q, q_goal, self.safety.max_speed * s, self.safety.max_accel * s
        )
        return self._run(traj, q_goal, wait)

    def move_pose(
        self, pose: SE3, *, linear: bool = False, wait: bool = True, speed: float = 1.0
    ) -> MotionResult | MotionHandle:
        """Move the TCP to a world-frame pose, joint-interpolated or in a straight line."""
        from robocell.trajectory import plan_joint_move, plan_linear_move

        if not isinstance(pose, SE3):
            raise ConfigError(f"move_pose needs a spatialmath SE3 pose, got {type(pose).__name__}")
        s = _speed_factor(speed)
        self.safety.check_tcp(np.asarray(pose.t, dtype=float), what="move_pose target")
        q0 = self.state().q
        if linear:
            traj = plan_linear_move(
                self.kinematics,
                q0,
                self._base_inv * pose,
                vmax=self.safety.max_speed * s,
                amax=self.safety.max_accel * s,
                max_lin_speed=self.safety.max_tcp_speed * s,
            )
            q_goal = traj.q[-1].copy()
        else:
            q_goal = self.ik(pose, q0)
            traj = plan_joint_move(
                q0, q_goal, self.safety.max_speed * s, self.safety.max_accel * s
            )
        return self._run(traj, q_goal, wait)

    def follow(self, traj: JointTrajectory, *, wait: bool = True) -> MotionResult | MotionHandle:
        """Follow a timed joint trajectory; it must start near the current state."""
        q_now = self.state().q
        gap = float(np.max(np.abs(traj.q[0] - q_now)))
        if gap > 0.05:
            raise ConfigError(
                f"follow: the trajectory starts {gap:.3f} rad away from the arm's current "
                "configuration (limit 0.05 rad); move to its first point with move_joints first"
            )
        return self._run(traj, traj.q[-1].copy(), wait)

    # ---- helpers -------------------------------------------------------
    def _run(
        self, traj: JointTrajectory, q_goal: np.ndarray, wait: bool
    ) -> MotionResult | MotionHandle:
        # the workspace check samples the TCP path (about every 2 cm on a fast move)
        base = np.asarray(self.base.A)
        stride = max(1, len(traj.q) // 25)
        samples = [*traj.q[::stride], traj.q[-1]]
        tcp = np.array([(base @ self.kinematics.fk_matrix(q))[:3, 3] for q in samples])
        self.safety.check_trajectory(traj, tcp_positions=tcp)
        handle = self._execute(traj, q_goal)
        if not wait:
            return handle
        result = handle.wait()
        self.check_result(result)
        return result

    def check_result(self, result: MotionResult) -> None:
        """Raise if a finished motion ended outside tolerance (no silent undershoot)."""
        if not result.completed:
            from robocell.errors import MotionCancelled

            raise MotionCancelled(
                f"arm '{self.name}': the motion was stopped before it finished "
                f"(ended {result.joint_error:.4f} rad from its goal)"
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

    def _check_tcp(self, q: np.ndarray, what: str) -> None:
        self.safety.check_tcp(np.asarray(self.tcp_pose(q).t, dtype=float), what=what)

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

    @abc.abstractmethod
    def open(self, width: float | None = None, *, wait: bool = True) -> MotionHandle | None:
        """Open to ``width`` (m; default fully open)."""

    @abc.abstractmethod
    def close(self, force: float | None = None, *, wait: bool = True) -> MotionHandle | None:
        """Close with ``force`` (N per finger) until the fingers stop."""

    @abc.abstractmethod
    def width(self) -> float:
        """Current opening between the fingers, m."""

    @abc.abstractmethod
    def grasped(self) -> bool:
        """True when the fingers stopped on an object (width and contact), as a real gripper reports."""


def _speed_factor(speed: float) -> float:
    if not (np.isfinite(speed) and 0.0 < speed <= 1.0):
        raise ConfigError(f"speed = {speed!r} is not allowed: give a fraction of the limits in (0, 1]")
    return float(speed)
