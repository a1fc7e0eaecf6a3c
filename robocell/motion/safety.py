"""The safety envelope: joint, speed, acceleration and workspace limits of one arm.

Every target, trajectory and servo setpoint is checked here before a backend
sees it (the ZeroMQ server runs the same checks as the authority).  A check
either returns or raises :class:`SafetyViolation` naming what was checked, the
joint or axis, the value with units, the limit and what to do; nothing moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from robocell.errors import ConfigError, SafetyViolation

if TYPE_CHECKING:
    from robocell.motion.trajectory import JointTrajectory

# Positions may touch a limit to within float rounding (planners end exactly on
# the targets they were given, and IK clips to the limits).
_POS_TOL = 1e-9
# Speeds are exact for planned profiles; allow only float rounding.
_SPEED_REL_TOL = 1e-6
# Accelerations are estimated by finite differences of sampled velocities; the
# planners' analytic profiles stay within the limit, but IK-sampled paths and
# user waypoints carry interpolation noise: 5 % plus 1e-6 rad/s^2 absolute.
_ACCEL_REL_TOL = 0.05
_ACCEL_ABS_TOL = 1e-6
_AXES = ("x", "y", "z")


def _digits(value: float, bound: float) -> int:
    """Decimals needed so a value just past its bound does not print equal to it."""
    for digits in range(2, 9):
        if f"{value:.{digits}f}" != f"{bound:.{digits}f}":
            return digits
    return 9


def _fmt(value: float, bound: float) -> tuple[str, str]:
    d = _digits(value, bound)
    return f"{value:.{d}f}", f"{bound:.{d}f}"


@dataclass(frozen=True, eq=False)
class SafetyEnvelope:
    """Limits one arm must stay inside; arrays per joint in ``joint_names`` order.

    ``lower``/``upper`` rad, ``max_speed`` rad/s, ``max_accel`` rad/s^2;
    ``workspace_min``/``workspace_max`` bound the TCP position (m) in whatever
    frame the caller gives positions in (the cell uses world);
    ``max_tcp_speed`` m/s.
    """

    joint_names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_speed: np.ndarray
    max_accel: np.ndarray
    workspace_min: np.ndarray
    workspace_max: np.ndarray
    max_tcp_speed: float = 0.5

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        for name, size in (
            ("lower", n), ("upper", n), ("max_speed", n), ("max_accel", n),
            ("workspace_min", 3), ("workspace_max", 3),
        ):
            arr = np.array(getattr(self, name), dtype=float).reshape(-1)
            if arr.shape != (size,) or not np.all(np.isfinite(arr)):
                raise ConfigError(
                    f"safety envelope: '{name}' must be {size} finite numbers, got {getattr(self, name)!r}"
                )
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for i, j in enumerate(self.joint_names):
            if self.lower[i] > self.upper[i]:
                raise ConfigError(
                    f"safety envelope: joint {j} lower limit {self.lower[i]:.3f} rad is above "
                    f"its upper limit {self.upper[i]:.3f} rad; swap them"
                )
            for name in ("max_speed", "max_accel"):
                if getattr(self, name)[i] <= 0:
                    raise ConfigError(
                        f"safety envelope: {name} of joint {j} is {getattr(self, name)[i]}; it must be positive"
                    )
        for k, ax in enumerate(_AXES):
            if self.workspace_min[k] > self.workspace_max[k]:
                raise ConfigError(
                    f"safety envelope: workspace {ax} range [{self.workspace_min[k]:.3f}, "
                    f"{self.workspace_max[k]:.3f}] m is empty; swap the bounds"
                )
        if not (math.isfinite(self.max_tcp_speed) and self.max_tcp_speed > 0):
            raise ConfigError(f"safety envelope: max_tcp_speed = {self.max_tcp_speed} m/s must be positive")

    @property
    def n(self) -> int:
        """Number of joints."""
        return len(self.joint_names)

    # ------------------------------------------------------------ joints
    def _vector(self, q: ArrayLike, what: str, label: str = "joint values") -> np.ndarray:
        try:
            arr = np.asarray(q, dtype=float).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise SafetyViolation(f"{what}: {label} {q!r} are not numbers; send {self.n} floats") from exc
        if arr.shape != (self.n,):
            raise SafetyViolation(
                f"{what}: got {arr.size} {label}, expected {self.n} "
                f"({', '.join(self.joint_names)}); send one value per joint"
            )
        bad = ~np.isfinite(arr)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise SafetyViolation(
                f"{what}: joint {self.joint_names[i]} = {arr[i]} is not a finite number; "
                "check the computation that produced it"
            )
        return arr

    def _limits(self, q: np.ndarray, what: str) -> None:
        low = q < self.lower - _POS_TOL
        high = q > self.upper + _POS_TOL
        if np.any(low | high):
            i = int(np.flatnonzero(low | high)[0])
            d = _digits(q[i], self.lower[i] if low[i] else self.upper[i])
            raise SafetyViolation(
                f"{what}: joint {self.joint_names[i]} = {q[i]:.{d}f} rad is outside the safety limits "
                f"[{self.lower[i]:.{d}f}, {self.upper[i]:.{d}f}] rad; choose a target inside the limits "
                "(or widen them in the cell file if the hardware allows)"
            )

    def check_joints(self, q: ArrayLike, what: str = "target") -> None:
        """Raise :class:`SafetyViolation` unless ``q`` is n finite values inside the limits."""
        self._limits(self._vector(q, what), what)

    # ------------------------------------------------------------ workspace
    def check_tcp(self, position: ArrayLike, what: str = "target") -> None:
        """Raise :class:`SafetyViolation` unless the TCP position (m) is finite and in the box."""
        p = np.asarray(position, dtype=float).reshape(-1)
        if p.shape != (3,):
            raise SafetyViolation(f"{what}: TCP position has {p.size} values; give x, y, z in m")
        self._check_box(p[None, :], what, None)

    def _check_box(self, pts: np.ndarray, what: str, times: np.ndarray | None) -> None:
        bad = ~np.isfinite(pts)
        when = ""
        if np.any(bad):
            i, k = np.argwhere(bad)[0]
            if times is not None:
                when = f" at t = {times[i]:.3f} s"
            elif len(pts) > 1:
                when = f" (point {i})"
            raise SafetyViolation(f"{what}: TCP {_AXES[k]} = {pts[i, k]}{when} is not a finite number")
        out = (pts < self.workspace_min) | (pts > self.workspace_max)
        if np.any(out):
            i, k = np.argwhere(out)[0]
            bound = self.workspace_min[k] if pts[i, k] < self.workspace_min[k] else self.workspace_max[k]
            d = _digits(pts[i, k], bound)
            v = f"{pts[i, k]:.{d}f}"
            if times is not None:
                when = f" at t = {times[i]:.3f} s"
            elif len(pts) > 1:
                when = f" (point {i})"
            raise SafetyViolation(
                f"{what}: TCP {_AXES[k]} = {v} m{when} is outside the workspace "
                f"[{self.workspace_min[k]:.{d}f}, {self.workspace_max[k]:.{d}f}] m; "
                "choose a target inside the workspace box of the cell file"
            )

    # ------------------------------------------------------------ trajectories
    def check_trajectory(self, traj: JointTrajectory, tcp_positions: ArrayLike | None = None) -> None:
        """Check every sample: finite, inside the joint limits and the workspace;
        joint speed (given ``qd`` and implied by successive ``q``) within
        ``max_speed``; acceleration (finite differences of ``qd``) within
        ``max_accel`` plus 5 %.  ``tcp_positions`` (M, 3) m, if given, are TCP
        positions along the trajectory in the workspace frame: one per sample
        (M == N, then violations name the sample time) or a subset."""
        what = "trajectory"
        t, q, qd = np.asarray(traj.t), np.asarray(traj.q), np.asarray(traj.qd)
        if q.ndim != 2 or q.shape[1] != self.n or qd.shape != q.shape:
            raise SafetyViolation(
                f"{what}: has {q.shape[-1] if q.ndim == 2 else '?'} joints, expected {self.n} "
                f"({', '.join(self.joint_names)}); plan it for this arm"
            )
        for name, arr in (("position", q), ("velocity", qd)):
            bad = ~np.isfinite(arr)
            if np.any(bad):
                i, j = np.argwhere(bad)[0]
                raise SafetyViolation(
                    f"{what}: joint {self.joint_names[j]} {name} = {arr[i, j]} at t = {t[i]:.3f} s "
                    "is not a finite number; re-plan the trajectory"
                )
        self._samples_over(q, self.lower - _POS_TOL, self.upper + _POS_TOL, t, what, "position", "rad",
                           "keep the path inside the joint limits")
        vmax = self.max_speed * (1.0 + _SPEED_REL_TOL)
        self._samples_over(np.abs(qd), None, vmax, t, what, "speed", "rad/s", "slow the motion down")
        if t.size > 1:
            dt = np.diff(t)[:, None]
            implied = np.abs(np.diff(q, axis=0)) / dt
            self._samples_over(implied, None, vmax, t[1:], what, "speed between samples", "rad/s",
                               "slow the motion down or add samples")
            accel = np.abs(np.diff(qd, axis=0)) / dt
            amax = self.max_accel * (1.0 + _ACCEL_REL_TOL) + _ACCEL_ABS_TOL
            self._samples_over(accel, None, amax, t[1:], what, "acceleration", "rad/s^2",
                               "lower the acceleration or lengthen the motion")
        if tcp_positions is not None:
            pts = np.asarray(tcp_positions, dtype=float)
            if pts.ndim != 2 or pts.shape[1] != 3:
                raise SafetyViolation(
                    f"{what}: tcp_positions has shape {pts.shape}; give (M, 3) positions in m"
                )
            # callers may pass every sample's TCP (then times are named) or a subset
            self._check_box(pts, what, t if len(pts) == t.size else None)

    def _samples_over(
        self,
        values: np.ndarray,
        lower: np.ndarray | None,
        upper: np.ndarray,
        times: np.ndarray,
        what: str,
        quantity: str,
        unit: str,
        advice: str,
    ) -> None:
        over = values > upper
        if lower is not None:
            over |= values < lower
        if not np.any(over):
            return
        i, j = np.argwhere(over)[0]  # first in time
        val = values[i, j]
        if lower is not None:
            d = _digits(val, self.lower[j] if val < lower[j] else self.upper[j])
            v, bound = f"{val:.{d}f}", f"[{self.lower[j]:.{d}f}, {self.upper[j]:.{d}f}] {unit}"
            rel = "is outside the safety limits"
        else:
            limit = {"rad/s": self.max_speed, "rad/s^2": self.max_accel}[unit][j]
            v, b = _fmt(val, limit)
            bound = f"{b} {unit}"
            if unit == "rad/s^2":
                bound += " (+5 % allowed for finite-difference estimates)"
            rel = "exceeds the limit"
        raise SafetyViolation(
            f"{what}: joint {self.joint_names[j]} {quantity} = {v} {unit} at t = {times[i]:.3f} s "
            f"{rel} {bound}; {advice}"
        )

    # ------------------------------------------------------------ streaming
    def check_step(self, q_now: ArrayLike, q_next: ArrayLike, dt: float) -> None:
        """Check one streamed servo setpoint: ``q_next`` inside the limits and
        reachable from ``q_now`` within ``dt`` s without exceeding ``max_speed``."""
        what = "setpoint"
        now = self._vector(q_now, what, "current joint values")
        nxt = self._vector(q_next, what)
        self._limits(nxt, what)
        if not (isinstance(dt, (int, float, np.floating)) and math.isfinite(dt) and dt > 0):
            raise SafetyViolation(f"{what}: time step dt = {dt} s must be a positive finite number")
        speed = np.abs(nxt - now) / dt
        over = speed > self.max_speed * (1.0 + _SPEED_REL_TOL)
        if np.any(over):
            j = int(np.flatnonzero(over)[0])
            v, b = _fmt(speed[j], self.max_speed[j])
            raise SafetyViolation(
                f"{what}: joint {self.joint_names[j]} would move {abs(nxt[j] - now[j]):.4f} rad in "
                f"{dt:.4f} s = {v} rad/s, above the limit {b} rad/s; "
                "send closer setpoints or stream them more often"
            )
