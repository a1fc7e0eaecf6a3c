"""Human-like scripted demonstrations, for recording without a person at the arm.

A person does not move like a planner: the hand follows a curve through a
few via points, speeds up and slows down unevenly, trembles a little, and
pauses before closing and after opening the hand.  :func:`human_like_pick_place`
reproduces that through the public Arm/Gripper API only (so it runs in
simulation and on a remote arm alike): a smooth Cartesian spline per segment,
a time warp, low-pass filtered noise of about a millimetre, verified IK seeded
with the previous solution, and ``arm.follow`` of the resulting timed joint
trajectory, stretched in time wherever it would exceed the safety limits.
The path's shape is set by via points: ``lift`` and ``carry_via`` carry the
object high over an obstacle between start and goal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from spatialmath import SE3

from robocell.errors import ConfigError, SkillFailed
from robocell.motion.trajectory import timed_trajectory

if TYPE_CHECKING:
    from robocell.core.arm import Arm
    from robocell.core.cell import Cell

DT = 0.01  # s between Cartesian waypoints (100 Hz; the backend interpolates between them)
LIMIT_MARGIN = 0.8  # use at most this share of the envelope's joint speed and acceleration
PRE_GRASP = 0.06  # m above the grasp where the careful vertical descent starts
RELEASE_GAP = 0.006  # m between the object's bottom and its support when the hand opens


@dataclass
class DemoLog:
    """What the scripted operator did, on the backend's clock (for checking a recording)."""

    close_t: list[float] = field(default_factory=list)  # s: when close() was commanded
    open_t: list[float] = field(default_factory=list)  # s: when open() was commanded


def top_down(position: ArrayLike, yaw: float) -> SE3:
    """TCP pose pointing straight down with its x axis at ``yaw`` (rad) in the table plane."""
    return SE3.Trans(np.asarray(position, dtype=float)) * SE3.Rz(yaw) * SE3.Rx(math.pi)


def _yaw(T: SE3) -> float:
    x = T.R[:, 0]
    return math.atan2(x[1], x[0])


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _grasp_yaw(object_yaw: float, tcp_yaw: float) -> float:
    """Of the box's four side-on headings, the one nearest the hand's (keeps the wrist off its limits)."""
    cands = [_wrap(object_yaw + k * math.pi / 2) for k in range(4)]
    return min(cands, key=lambda y: abs(_wrap(y - tcp_yaw)))


def smooth_noise(n: int, amplitude: float, rng: np.random.Generator, cutoff: float = 1.5) -> np.ndarray:
    """(n, 3) tremor: white noise low-pass filtered below ``cutoff`` Hz, RMS ``amplitude`` m, zero at both ends."""
    if n < 3 or amplitude <= 0:
        return np.zeros((n, 3))
    sigma = 1.0 / (2 * math.pi * cutoff * DT)  # Gaussian kernel width (samples) for that cut-off
    k = np.arange(-int(4 * sigma), int(4 * sigma) + 1)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    kernel /= kernel.sum()
    white = rng.standard_normal((n + 2 * len(k), 3))
    low = np.stack([np.convolve(white[:, j], kernel, mode="same") for j in range(3)], axis=1)[len(k):len(k) + n]
    low *= amplitude / max(float(np.sqrt(np.mean(low ** 2))), 1e-12)
    # a window that is zero at the ends: segments join exactly at grasp and release
    return low * np.sin(np.linspace(0.0, math.pi, n))[:, None]


def _time_warp(n: int, rng: np.random.Generator) -> np.ndarray:
    """Path parameter s(tau) in [0, 1] over n samples: a minimum-jerk profile, warped so the speed peak
    falls early or late (people rush, then home in slowly, or the reverse)."""
    tau = np.linspace(0.0, 1.0, n)
    g = float(np.exp(rng.uniform(-0.35, 0.35)))
    w = tau ** g
    return np.asarray(10 * w ** 3 - 15 * w ** 4 + 6 * w ** 5)


def _spline(points: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Positions at path parameter s in [0, 1] on a C2 curve through ``points`` (chord-length knots)."""
    from scipy.interpolate import CubicSpline

    d = np.linalg.norm(np.diff(points, axis=0), axis=1)
    keep = np.concatenate([[True], d > 1e-6])
    pts = points[keep]
    if len(pts) < 2:
        return np.repeat(pts[:1], len(s), axis=0)
    u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    u /= u[-1]
    return np.asarray(CubicSpline(u, pts, bc_type="clamped")(s))


class HumanLikeMover:
    """Moves one arm along human-like Cartesian segments (see the module docstring)."""

    def __init__(self, arm: Arm, rng: np.random.Generator, *, speed: float = 0.15, noise: float = 0.0008) -> None:
        if not (0.01 <= speed <= 0.5):
            raise ConfigError(f"speed = {speed} m/s (mean TCP speed) must be in [0.01, 0.5] m/s")
        if not (0.0 <= noise <= 0.005):
            raise ConfigError(f"noise = {noise} m must be in [0, 0.005] m (a human tremor is about 1 mm)")
        self.arm = arm
        self.rng = rng
        self.speed = speed
        self.noise = noise

    def segment(self, via: Sequence[ArrayLike], end_yaw: float, *, speed: float | None = None,
                noise: float | None = None) -> None:
        """Move the TCP from where it is through ``via`` positions (m, world; the last is the goal), top-down,
        turning to ``end_yaw`` on the way."""
        arm = self.arm
        start = arm.state()
        q0 = start.q
        T0 = start.tcp
        pts = np.vstack([np.asarray(T0.t, dtype=float)] + [np.asarray(p, dtype=float) for p in via])
        length = float(np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1)))
        v = (speed or self.speed) * float(np.exp(self.rng.uniform(-0.2, 0.2)))
        duration = max(0.4, length / v)  # v is the mean speed; a minimum-jerk peak is 1.875x that
        n = max(3, int(round(duration / DT)) + 1)
        s = _time_warp(n, self.rng)
        pos = _spline(pts, s) + smooth_noise(n, self.noise if noise is None else noise, self.rng)
        yaw0 = _yaw(T0)
        yaws = yaw0 + _wrap(end_yaw - yaw0) * s
        q = np.empty((n, len(q0)))
        seed = q0
        for i in range(n):
            q[i] = seed = arm.ik(top_down(pos[i], float(yaws[i])), q_seed=seed)
        # A 7-joint arm's IK answers wander a little in the null space from one waypoint to the next;
        # tiny as they are, 100 Hz finite differences turn them into large accelerations. Smooth them
        # over ~30 ms (the TCP moves by micrometres), and start exactly where the arm is.
        from scipy.ndimage import gaussian_filter1d

        q = gaussian_filter1d(q, sigma=3.0, axis=0, mode="nearest")
        q[0] = q0
        self._follow(np.arange(n) * DT, q)

    def _follow(self, t: np.ndarray, q: np.ndarray) -> None:
        """Follow (t, q), stretched uniformly in time until its speeds and accelerations fit the envelope."""
        safety = self.arm.safety
        jump = float(np.max(np.abs(np.diff(q, axis=0)))) if len(q) > 1 else 0.0
        if jump > 0.3:
            raise SkillFailed(f"the IK solutions jump {jump:.2f} rad between neighbouring waypoints "
                              "(a wrist flip); choose via points farther from the arm's singularities")
        for _ in range(4):
            traj = timed_trajectory(t, q)
            dt = np.diff(traj.t)[:, None]
            speed = float(np.max(np.abs(traj.qd) / safety.max_speed))
            accel = float(np.max(np.abs(np.diff(traj.qd, axis=0)) / dt / safety.max_accel))
            stretch = max(speed / LIMIT_MARGIN, math.sqrt(accel / LIMIT_MARGIN))
            if stretch <= 1.0:
                break
            t = t * stretch * 1.02  # speed scales with 1/stretch, acceleration with 1/stretch^2
        self.arm.follow(timed_trajectory(t, q))


def human_like_pick_place(cell: Cell, object: str, release: SE3, *, rng: np.random.Generator,
                          arm: str | None = None, via_height: float = 0.12, lift: float = 0.0,
                          carry_via: Sequence[ArrayLike] = (), speed: float = 0.15, noise: float = 0.0008,
                          pause: tuple[float, float] = (0.3, 0.7)) -> DemoLog:
    """Pick ``object`` from above and let go of it with its centre at ``release`` (world pose; its yaw
    turns the object), moving like a person.  Not the built-in pick/place skills.

    ``via_height`` (m) is how far above the start and goal the carried object passes; ``lift`` (m) raises
    the middle of the carry further (to pass over an obstacle), and ``carry_via`` adds world positions (m)
    the object's centre passes through between pick and release.  ``pause`` is the range (s) of the
    hesitations before closing and after opening.  Returns when each gripper command was given.
    """
    if via_height < 0.03 or lift < 0:
        raise ConfigError(f"via_height = {via_height} m must be >= 0.03 m and lift = {lift} m >= 0")
    the_arm = cell.arm(arm)
    gripper = cell.gripper(arm)
    cell.spec.object(object)  # ConfigError naming the cell's objects if unknown
    mover = HumanLikeMover(the_arm, rng, speed=speed, noise=noise)
    log = DemoLog()
    obj = cell.object_pose(object)
    obj_p = np.asarray(obj.t, dtype=float)
    tcp = the_arm.state().tcp
    yaw = _grasp_yaw(_yaw(obj), _yaw(tcp))
    grasp_p = obj_p.copy()
    pre = grasp_p + [0, 0, PRE_GRASP]

    gripper.open()
    # reach: a curve that rises over the straight line and comes in over the object, slightly off-axis
    start = np.asarray(tcp.t, dtype=float)
    mid = 0.5 * (start + pre) + [*rng.uniform(-0.03, 0.03, 2), 0.04 + rng.uniform(0.0, 0.03)]
    mover.segment([mid, pre], yaw)
    mover.segment([grasp_p + [0, 0, 0.02], grasp_p], yaw, speed=0.4 * speed, noise=0.5 * noise)
    cell.wait(rng.uniform(*pause))
    log.close_t.append(the_arm.state().timestamp)
    gripper.close()
    if not gripper.grasped():
        raise SkillFailed(f"the demonstration closed on nothing at '{object}'; is the object where the cell "
                          "says it is?")
    cell.wait(rng.uniform(0.1, 0.3))

    # carry: lift, over any via points, above the release point, down
    in_hand = np.asarray(cell.object_pose(object).t, dtype=float) - np.asarray(the_arm.state().tcp.t, dtype=float)
    goal_obj = np.asarray(release.t, dtype=float)
    goal_yaw = _grasp_yaw(_yaw(release) + (yaw - _yaw(obj)), yaw)
    up = grasp_p + [0, 0, via_height]
    above_goal = goal_obj - in_hand + [0, 0, via_height]
    top = 0.5 * (up + above_goal) + [0, 0, lift] + [*rng.uniform(-0.02, 0.02, 2), 0.0]
    vias = [up, *[np.asarray(p, dtype=float) - in_hand for p in carry_via], top, above_goal]
    mover.segment(vias, goal_yaw)
    release_tcp = goal_obj - in_hand
    mover.segment([release_tcp + [0, 0, 0.015], release_tcp], goal_yaw, speed=0.4 * speed, noise=0.5 * noise)
    cell.wait(rng.uniform(*pause) * 0.5)
    log.open_t.append(the_arm.state().timestamp)
    gripper.open()
    cell.wait(rng.uniform(*pause))
    # retreat: straight up, then drift back
    mover.segment([release_tcp + [0, 0, 0.5 * via_height], release_tcp + [-0.05, 0, via_height]], goal_yaw)
    return log


def slot_release(cell: Cell, object: str, frame: str) -> SE3:
    """Where to let go of ``object`` over a named frame on a support (a tray slot): its centre
    half its height plus a small gap above the frame."""
    spec = cell.spec.object(object)
    height = spec.size[2] if spec.shape == "box" else spec.size[1] if spec.shape == "cylinder" else 0.04
    return SE3.Trans(0, 0, height / 2 + RELEASE_GAP) * cell.frame(frame)


__all__ = ["DemoLog", "HumanLikeMover", "human_like_pick_place", "slot_release", "smooth_noise", "top_down"]
