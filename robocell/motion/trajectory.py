"""Timed joint trajectories: joint moves, straight-line TCP moves, user waypoints.

Every planner returns a :class:`JointTrajectory` sampled at (at most) ``dt``
with the exact end point as the last sample.  Backends play it back with
:meth:`JointTrajectory.sample`, which interpolates *linearly* between samples:
the commanded positions then never leave the convex hull of neighbouring
samples, so a safety check of the samples bounds the whole motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from spatialmath import SE3

from robocell.errors import ConfigError, KinematicsError, UnreachableError
from robocell.motion.limits import MAX_MOTION_DURATION as MAX_MOTION_DURATION
from robocell.motion.limits import MAX_TRAJECTORY_SAMPLES as MAX_TRAJECTORY_SAMPLES

if TYPE_CHECKING:
    from robocell.motion.kinematics import Kinematics

# Max rotation between Cartesian waypoints of a linear move, rad.
_ANG_STEP = 0.05
# Smallest lever arm (m) between a joint axis and the TCP motion we accept on a
# linear path: a waypoint step of d metres may turn a joint by at most d/0.05 m.
# A closer axis means the path grazes a singularity, or IK switched branch.
_MIN_LEVER = 0.05
# A rotation step of dtheta may turn joints by at most 3*dtheta: wrist joints
# share the rotation, but need not multiply it unless near a wrist singularity.
_ROT_GAIN = 3.0
# Floor of the joint-jump bound, rad: below this nothing is called a flip.
_MIN_JUMP = 0.1


@dataclass(frozen=True, eq=False)
class JointTrajectory:
    """Joint positions and velocities sampled in time (SI units, arrays read-only).

    ``t`` (N,) s with ``t[0] == 0`` and strictly increasing; ``q`` and ``qd``
    (N, n) in rad and rad/s.  A single sample (N == 1, duration 0) means
    "hold this configuration": that is what a zero-length move returns.
    """

    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray

    def __post_init__(self) -> None:
        t = np.array(self.t, dtype=float, order="C").reshape(-1)
        q = np.array(self.q, dtype=float, order="C")
        qd = np.array(self.qd, dtype=float, order="C")
        if t.size == 0 or q.ndim != 2 or q.shape[0] != t.size or qd.shape != q.shape:
            raise ConfigError(
                f"trajectory arrays disagree: t {t.shape}, q {q.shape}, qd {qd.shape}; "
                "give t (N,), q and qd (N, n)"
            )
        _check_times(t, shift=False)
        for name, arr in (("q", q), ("qd", qd)):
            if not np.all(np.isfinite(arr)):
                i, j = np.argwhere(~np.isfinite(arr))[0]
                raise ConfigError(f"trajectory {name}[{i}, {j}] = {arr[i, j]} is not finite")
        for name, arr in (("t", t), ("q", q), ("qd", qd)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def duration(self) -> float:
        """Time of the last sample, s."""
        return float(self.t[-1])

    @property
    def n(self) -> int:
        """Number of joints."""
        return int(self.q.shape[1])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(q, qd) at time ``t`` s, linearly interpolated; held at the ends."""
        ts = self.t
        if t <= 0.0 or ts.size == 1:
            return self.q[0].copy(), self.qd[0].copy()
        if t >= ts[-1]:
            return self.q[-1].copy(), self.qd[-1].copy()
        i = int(np.searchsorted(ts, t, side="right")) - 1
        a = (t - ts[i]) / (ts[i + 1] - ts[i])
        return (
            self.q[i] + a * (self.q[i + 1] - self.q[i]),
            self.qd[i] + a * (self.qd[i + 1] - self.qd[i]),
        )


# ---------------------------------------------------------------- helpers
def _vec(x: ArrayLike, n: int, what: str, positive: bool = False) -> np.ndarray:
    """n finite values; limits (``positive``) may also be one scalar for all joints."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 0 and positive:
        a = np.full(n, float(a))
    a = a.reshape(-1)
    if a.shape != (n,):
        also = " or one scalar" if positive else ""
        raise ConfigError(f"{what} has {a.size} values; give {n} (one per joint){also}")
    bad = ~np.isfinite(a) | ((a <= 0) if positive else False)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        need = "a positive finite number" if positive else "finite"
        raise ConfigError(f"{what}[{i}] = {a[i]} must be {need}")
    return a


def _check_times(t: np.ndarray, shift: bool) -> np.ndarray:
    if not np.all(np.isfinite(t)):
        i = int(np.flatnonzero(~np.isfinite(t))[0])
        raise ConfigError(f"time t[{i}] = {t[i]} is not finite")
    if shift:
        if t[0] < 0:
            raise ConfigError(f"time t[0] = {t[0]} s is negative; times must start at 0 or later")
        t = t - t[0]
    elif t[0] != 0.0:
        raise ConfigError(f"time t[0] = {t[0]} s; a trajectory starts at t = 0")
    if t.size > 1:
        d = np.diff(t)
        if np.any(d <= 0):
            i = int(np.flatnonzero(d <= 0)[0]) + 1
            raise ConfigError(
                f"time t[{i}] = {t[i]} s is not after t[{i - 1}] = {t[i - 1]} s; "
                "times must increase strictly"
            )
    return t


def _times(duration: float, dt: float) -> np.ndarray:
    """0, dt, 2dt, ... plus the exact end; a sample closer than 1e-6*dt to the
    end is dropped so the last interval is never a rounding artefact."""
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt = {dt} s must be a positive finite number")
    if not (math.isfinite(duration) and duration <= MAX_MOTION_DURATION) or duration / dt >= MAX_TRAJECTORY_SAMPLES:
        raise ConfigError(f"the motion would last {duration:.4g} s in {duration / dt:.4g} samples, above the limits of "
                          f"{MAX_MOTION_DURATION:g} s and {MAX_TRAJECTORY_SAMPLES} samples; move faster "
                          "(a larger speed fraction) or split it into shorter moves")
    ts = np.arange(0.0, duration, dt)
    if ts.size and duration - ts[-1] < 1e-6 * dt:
        ts = ts[:-1]
    return np.append(ts, duration)


def _trapezoid_duration(v: float, a: float) -> float:
    """Duration of a rest-to-rest move over s in [0, 1] with sdot <= v, sddot <= a."""
    return 2.0 * math.sqrt(1.0 / a) if a <= v * v else 1.0 / v + v / a


def _trapezoid(v: float, a: float, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s(t), sdot(t) of that move; triangular when the path is too short to reach v."""
    total = _trapezoid_duration(v, a)
    if a <= v * v:
        v = math.sqrt(a)  # peak speed of the triangle
    ta = v / a
    t = np.clip(t, 0.0, total)
    td = total - t
    s = np.where(t < ta, 0.5 * a * t * t, np.where(td < ta, 1.0 - 0.5 * a * td * td, v * (t - 0.5 * ta)))
    sd = np.where(t < ta, a * t, np.where(td < ta, a * td, v))
    return s, sd


def _hold(q: np.ndarray) -> JointTrajectory:
    return JointTrajectory(np.zeros(1), q.reshape(1, -1).copy(), np.zeros((1, q.size)))


# ---------------------------------------------------------------- planners
def plan_joint_move(
    q0: ArrayLike,
    q1: ArrayLike,
    vmax: ArrayLike,
    amax: ArrayLike,
    dt: float = 0.01,
) -> JointTrajectory:
    """Synchronised trapezoidal joint move from ``q0`` to ``q1``.

    All joints move along the straight line in joint space, start and stop
    together and stay within their own ``vmax`` (rad/s) and ``amax`` (rad/s^2)
    (arrays or scalars).  Time-optimal for that line: the joint with the
    tightest limit relative to its distance sets the pace.  Sampled every
    ``dt`` plus the exact end point (``q[-1] == q1`` exactly).  A zero-length
    move returns a single-sample trajectory of duration 0.
    """
    a0 = np.asarray(q0, dtype=float).reshape(-1)
    n = a0.size
    start = _vec(a0, n, "q0")
    goal = _vec(q1, n, "q1")
    v = _vec(vmax, n, "vmax", positive=True)
    acc = _vec(amax, n, "amax", positive=True)
    d = goal - start
    dist = np.abs(d)
    if not np.any(dist > 0):
        return _hold(start)
    moving = dist > 0
    # path parameter s in [0, 1]: q = q0 + s*d, so joint i limits sdot by vmax_i/|d_i|
    sv = float(np.min(v[moving] / dist[moving]))
    sa = float(np.min(acc[moving] / dist[moving]))
    t = _times(_trapezoid_duration(sv, sa), dt)
    s, sd = _trapezoid(sv, sa, t)
    q = start + s[:, None] * d
    qd = sd[:, None] * d
    q[0], q[-1], qd[0], qd[-1] = start, goal, 0.0, 0.0
    return JointTrajectory(t, q, qd)


def _interp_poses(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(N, 4, 4) poses from ``a`` to ``b``: position linear, rotation slerp (vectorised).

    spatialmath's ``SE3.interp`` builds an object per waypoint, which was the
    largest part of planning a short linear move.
    """
    from spatialmath.base import q2r, r2q

    qa, qb = r2q(a[:3, :3]), r2q(b[:3, :3])
    dot = float(np.dot(qa, qb))
    if dot < 0.0:  # take the short way round
        qb, dot = -qb, -dot
    theta = math.acos(min(1.0, dot))
    if theta < 1e-9:
        quats = np.repeat(qa[None, :], len(s), axis=0)
    else:
        quats = (np.sin((1 - s) * theta)[:, None] * qa + np.sin(s * theta)[:, None] * qb) / math.sin(theta)
    out = np.zeros((len(s), 4, 4))
    out[:, 3, 3] = 1.0
    out[:, :3, 3] = a[:3, 3] + s[:, None] * (b[:3, 3] - a[:3, 3])
    for i, qv in enumerate(quats):
        out[i, :3, :3] = q2r(qv / np.linalg.norm(qv))
    return out


def plan_linear_move(
    kin: Kinematics,
    q0: ArrayLike,
    target: SE3,
    *,
    vmax: ArrayLike,
    amax: ArrayLike,
    max_lin_speed: float = 0.25,
    max_ang_speed: float = 1.0,
    step: float = 0.005,
    dt: float = 0.01,
    rng: np.random.Generator | None = None,
) -> JointTrajectory:
    """Straight-line TCP move from ``kin.fk(q0)`` to ``target`` (arm base frame).

    Position is interpolated linearly and orientation by slerp, with waypoints
    at most ``step`` m and 0.05 rad apart; each waypoint is solved by IK seeded
    with the previous one.  A joint that jumps more than a waypoint step can
    explain (step/0.05 m + 3*rotation step, at least 0.1 rad) raises
    :class:`KinematicsError` (joint flip).  The joint path is a cubic spline
    through the waypoints, time-parametrised by a trapezoidal profile whose
    speed and acceleration keep every joint within ``vmax``/``amax`` (including
    the path-curvature term) and the TCP within ``max_lin_speed`` m/s and
    ``max_ang_speed`` rad/s; sampled every ``dt`` plus the exact end.
    """
    start = np.asarray(q0, dtype=float).reshape(-1)
    n = kin.n
    start = _vec(start, n, "q0")
    v = _vec(vmax, n, "vmax", positive=True)
    acc = _vec(amax, n, "amax", positive=True)
    for val, name in ((max_lin_speed, "max_lin_speed"), (max_ang_speed, "max_ang_speed"), (step, "step")):
        if not (math.isfinite(val) and val > 0):
            raise ConfigError(f"{name} = {val} must be a positive finite number")
    t_end = np.asarray(target.A, dtype=float)
    if t_end.shape != (4, 4) or not np.all(np.isfinite(t_end)):
        raise KinematicsError(f"linear move target must be one finite SE3 pose, got {target}")
    goal = SE3(t_end, check=False)
    t_start = kin.fk(start)
    length, angle = kin.pose_error(t_start, goal)
    segs = max(int(math.ceil(length / step)), int(math.ceil(angle / _ANG_STEP)))
    if segs == 0 or (length < 1e-9 and angle < 1e-9):
        return _hold(start)
    s_grid = np.linspace(0.0, 1.0, segs + 1)
    poses = _interp_poses(np.asarray(t_start.A), t_end, s_grid)
    qs = _waypoint_joints(kin, start, poses, s_grid, length, angle, rng)

    t, q, qd = _time_path(kin, qs, s_grid, length, angle, v, acc, max_lin_speed, max_ang_speed, dt)
    q[0], q[-1], qd[0], qd[-1] = start, qs[-1], 0.0, 0.0
    return JointTrajectory(t, q, qd)


def _waypoint_joints(kin: Kinematics, start: np.ndarray, poses: np.ndarray, s_grid: np.ndarray, length: float,
                     angle: float, rng: np.random.Generator | None) -> np.ndarray:
    """Each waypoint's joints by IK seeded with the previous one; a joint flip raises KinematicsError."""
    segs, n = len(s_grid) - 1, kin.n
    bound = max(_MIN_JUMP, length / segs / _MIN_LEVER + _ROT_GAIN * angle / segs)
    qs = np.empty((segs + 1, n))
    qs[0] = start
    for k in range(1, segs + 1):
        try:
            qs[k] = kin.ik(poses[k], qs[k - 1], rng=rng)
        except UnreachableError as exc:
            raise UnreachableError(
                f"linear move: waypoint {k} of {segs} ({s_grid[k]:.0%} of the path) is unreachable: {exc}"
            ) from exc
        jump = np.abs(qs[k] - qs[k - 1])
        j = int(np.argmax(jump))
        if jump[j] > bound:
            raise KinematicsError(
                f"linear move: joint {kin.joint_names[j]} jumps {jump[j]:.2f} rad between waypoints "
                f"{k - 1} and {k} of {segs} (at {s_grid[k]:.0%} of the path; a step of "
                f"{length / segs * 1e3:.1f} mm / {angle / segs:.3f} rad allows {bound:.2f} rad): "
                "joint flip or near-singular path; try a joint move first or a different approach"
            )
    return qs


def _time_path(kin: Kinematics, qs: np.ndarray, s_grid: np.ndarray, length: float, angle: float, v: np.ndarray,
               acc: np.ndarray, max_lin_speed: float, max_ang_speed: float,
               dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, q, qd): a cubic spline through the waypoints, timed by the fastest trapezoid within every limit."""
    from scipy.interpolate import CubicSpline

    segs = len(s_grid) - 1
    spline = CubicSpline(s_grid, qs, axis=0, bc_type="natural")
    dense = np.linspace(0.0, 1.0, 8 * segs + 1)  # catch spline extrema between knots
    d1 = np.max(np.abs(spline(dense, 1)), axis=0)
    d2 = np.max(np.abs(spline(dense, 2)), axis=0)
    # s is uniform in arc length and angle, so TCP speed = length * sdot
    sv = min(
        max_lin_speed / length if length > 0 else math.inf,
        max_ang_speed / angle if angle > 0 else math.inf,
        float(np.min(v / np.maximum(d1, 1e-12))),
    )
    # joint accel = q'(s) sddot + q''(s) sdot^2: give the curvature term at most
    # half of amax (by capping sdot), the path acceleration the rest
    curv = d2 > 1e-12
    if np.any(curv):
        sv = min(sv, float(np.min(np.sqrt(0.5 * acc[curv] / d2[curv]))))
    sa = float(np.min((acc - d2 * sv * sv) / np.maximum(d1, 1e-12)))
    t = _times(_trapezoid_duration(sv, sa), dt)
    s, sd = _trapezoid(sv, sa, t)
    # waypoints are inside the limits (verified IK); the spline between them
    # can bulge past a limit by micro-radians when a waypoint sits on it
    q = np.clip(spline(s), kin.lower, kin.upper)
    qd = spline(s, 1) * sd[:, None]
    return t, q, qd


def timed_trajectory(t: ArrayLike, q: ArrayLike, *, n: int | None = None) -> JointTrajectory:
    """Trajectory through user waypoints ``q`` (N, n) rad at times ``t`` (N,) s.

    Times must be finite, ``t[0] >= 0`` and strictly increasing; they are
    shifted so the trajectory starts at 0.  Velocities are finite differences
    (``np.gradient``, second order inside, one-sided at the ends); a single
    waypoint gives a hold.  ``n``, when given, is the expected joint count.
    """
    ta = np.asarray(t, dtype=float).reshape(-1)
    qa = np.asarray(q, dtype=float)
    if qa.ndim == 1 and n is not None and qa.size == ta.size * n:
        qa = qa.reshape(ta.size, n)
    if qa.ndim != 2:
        raise ConfigError(f"waypoints q must be a 2-D array (N, n joints), got shape {qa.shape}")
    if ta.size == 0:
        raise ConfigError("no waypoints given; give at least one time and one joint vector")
    if qa.shape[0] != ta.size:
        raise ConfigError(f"{ta.size} times but {qa.shape[0]} waypoints; give one time per waypoint")
    if n is not None and qa.shape[1] != n:
        raise ConfigError(f"waypoints have {qa.shape[1]} joint values each; this arm has {n}")
    if not np.all(np.isfinite(qa)):
        i, j = np.argwhere(~np.isfinite(qa))[0]
        raise ConfigError(f"waypoint {i}, joint {j} = {qa[i, j]} is not finite")
    ta = _check_times(ta, shift=True)
    if ta.size == 1:
        return _hold(qa[0])
    qd = np.gradient(qa, ta, axis=0, edge_order=1)
    return JointTrajectory(ta, qa.copy(), qd)


def plan_stop(q: np.ndarray, qd: np.ndarray, amax: np.ndarray, dt: float = 0.01) -> JointTrajectory:
    """A synchronised constant-deceleration stop from (q, qd): every joint reaches zero
    speed at the same time, none decelerating faster than ``amax`` (rad/s^2)."""
    t_stop = float(np.max(np.abs(qd) / amax))
    if t_stop < dt:
        return JointTrajectory(t=np.array([0.0, dt]), q=np.vstack([q, q]), qd=np.zeros((2, len(q))))
    ts = np.append(np.arange(0.0, t_stop, dt), t_stop)
    a = qd / t_stop  # each joint reaches zero speed at t_stop, none exceeds amax
    qs = q[None, :] + qd[None, :] * ts[:, None] - 0.5 * a[None, :] * ts[:, None] ** 2
    qds = qd[None, :] - a[None, :] * ts[:, None]
    return JointTrajectory(t=ts, q=qs, qd=qds)
