"""Trajectories: synchronised joint moves, straight-line TCP moves, user waypoints."""

from __future__ import annotations

import time

import numpy as np
import pytest
from spatialmath import SE3

from robocell.errors import ConfigError, KinematicsError, UnreachableError
from robocell.motion.kinematics import Kinematics
from robocell.motion.arm_models import get_model
from robocell.motion.trajectory import JointTrajectory, plan_joint_move, plan_linear_move, timed_trajectory

VMAX = np.array([2.0, 2.0, 2.0, 2.0, 2.5, 2.5, 2.5])
AMAX = np.array([5.0, 4.0, 5.0, 5.0, 8.0, 8.0, 8.0])


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics.from_model(get_model("panda"))


@pytest.fixture(scope="module")
def home() -> np.ndarray:
    return np.array(get_model("panda").home)


def _fd_accel(traj: JointTrajectory) -> np.ndarray:
    return np.abs(np.diff(traj.qd, axis=0)) / np.diff(traj.t)[:, None]


# ---------------------------------------------------------------- joint moves
def test_joint_move_limits_sync_and_endpoints(home: np.ndarray) -> None:
    q1 = home + np.array([0.8, -0.3, 0.0, 0.5, -1.2, 0.2, 0.05])
    traj = plan_joint_move(home, q1, VMAX, AMAX, dt=0.01)
    assert traj.t[0] == 0.0 and np.all(np.diff(traj.t) > 0) and np.all(np.diff(traj.t) <= 0.01 + 1e-12)
    assert np.array_equal(traj.q[0], home) and np.array_equal(traj.q[-1], q1)
    assert np.all(traj.qd[0] == 0) and np.all(traj.qd[-1] == 0)
    assert np.all(np.abs(traj.qd) <= VMAX * (1 + 1e-9))
    assert np.all(_fd_accel(traj) <= AMAX * (1 + 1e-6))
    # synchronised: every joint has covered the same fraction of its distance
    moving = np.abs(q1 - home) > 0
    frac = (traj.q[:, moving] - home[moving]) / (q1 - home)[moving]
    assert np.allclose(frac, frac[:, :1], atol=1e-9)
    # time-optimal along the line: joint 5 caps the speed (1.2 rad at 2.5 rad/s),
    # joint 1 the acceleration (0.8 rad at 5 rad/s^2); both limits are reached
    sv, sa = 2.5 / 1.2, 5.0 / 0.8
    assert traj.duration == pytest.approx(1 / sv + sv / sa, rel=1e-9)
    assert np.max(np.abs(traj.qd[:, 4])) == pytest.approx(2.5, rel=1e-9)
    assert np.max(_fd_accel(traj)[:, 0]) == pytest.approx(5.0, rel=1e-6)


def test_joint_move_short_is_triangular_and_scalar_limits(home: np.ndarray) -> None:
    q1 = home + 0.01
    traj = plan_joint_move(home, q1, 1.0, 2.0)
    assert traj.duration == pytest.approx(2 * np.sqrt(0.01 / 2.0), rel=1e-9)
    assert np.max(np.abs(traj.qd)) < 1.0


def test_zero_length_move_is_a_hold(home: np.ndarray) -> None:
    traj = plan_joint_move(home, home, VMAX, AMAX)
    assert traj.duration == 0.0 and len(traj.t) == 1
    q, qd = traj.sample(0.5)
    assert np.array_equal(q, home) and np.all(qd == 0)


def test_joint_move_rejects_bad_limits(home: np.ndarray) -> None:
    with pytest.raises(ConfigError, match=r"vmax\[2\] = 0"):
        plan_joint_move(home, home + 0.1, np.array([1, 1, 0, 1, 1, 1, 1.0]), AMAX)
    with pytest.raises(ConfigError, match="amax has 3 values"):
        plan_joint_move(home, home + 0.1, VMAX, np.ones(3))
    with pytest.raises(ConfigError, match="q1"):
        plan_joint_move(home, np.full(7, np.nan), VMAX, AMAX)


def test_sample_interpolates_and_clamps() -> None:
    t = np.array([0.0, 1.0, 3.0])
    q = np.array([[0.0, 1.0], [1.0, 1.0], [3.0, 0.0]])
    qd = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    traj = JointTrajectory(t, q, qd)
    assert np.allclose(traj.sample(0.5)[0], [0.5, 1.0])
    assert np.allclose(traj.sample(2.0)[0], [2.0, 0.5])
    assert np.allclose(traj.sample(2.0)[1], [0.5, 0.0])
    assert np.array_equal(traj.sample(1.0)[0], q[1])
    assert np.array_equal(traj.sample(-1.0)[0], q[0]) and np.array_equal(traj.sample(9.0)[0], q[-1])
    assert traj.duration == 3.0 and traj.n == 2


def test_sample_is_fast(home: np.ndarray) -> None:
    traj = plan_joint_move(home, home + 1.0, VMAX, AMAX, dt=0.001)
    ts = np.linspace(0, traj.duration, 2400)
    t0 = time.perf_counter()
    for t in ts:
        traj.sample(float(t))
    per_call = (time.perf_counter() - t0) / ts.size
    assert per_call < 1e-4  # 240 Hz needs << 4 ms; this is ~10 us


def test_trajectory_validation() -> None:
    with pytest.raises(ConfigError, match=r"t\[0\] = 0.5"):
        JointTrajectory(np.array([0.5, 1.0]), np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="disagree"):
        JointTrajectory(np.array([0.0, 1.0]), np.zeros((3, 2)), np.zeros((3, 2)))


# ---------------------------------------------------------------- linear moves
@pytest.mark.parametrize(
    "offset",
    [SE3(0.15, 0.2, -0.2), SE3(0.0, -0.25, 0.05) * SE3.Rx(0.3), SE3(0.05, 0.0, 0.0)],
    ids=["translate", "translate+rotate", "short"],
)
def test_linear_move_stays_on_line(kin: Kinematics, home: np.ndarray, offset: SE3) -> None:
    start = kin.fk(home)
    target = SE3(offset.t) * start * SE3.Rt(offset.R, np.zeros(3))
    traj = plan_linear_move(kin, home, target, vmax=VMAX, amax=AMAX, max_lin_speed=0.2)
    pe, re = kin.pose_error(kin.fk(traj.q[-1]), target)
    assert pe <= 1e-3 and re <= 1e-2
    assert np.array_equal(traj.q[0], home)
    # straight line by FK, at samples and between them (as played back)
    ts = np.linspace(0.0, traj.duration, 4 * len(traj.t))
    pts = np.array([kin.fk(traj.sample(float(t))[0]).t for t in ts])
    p0, p1 = start.t, target.t
    u = (p1 - p0) / np.linalg.norm(p1 - p0)
    rel = pts - p0
    deviation = np.linalg.norm(rel - np.outer(rel @ u, u), axis=1)
    assert deviation.max() <= 1e-3
    # TCP speed and joint limits
    sample_pts = np.array([kin.fk(q).t for q in traj.q])
    speed = np.linalg.norm(np.diff(sample_pts, axis=0), axis=1) / np.diff(traj.t)
    assert speed.max() <= 0.2 * 1.02
    assert np.all(np.abs(traj.qd) <= VMAX * (1 + 1e-6))
    assert np.all(_fd_accel(traj) <= AMAX * 1.05)
    assert all(kin.within_limits(q) for q in traj.q)


def test_linear_move_angular_speed(kin: Kinematics, home: np.ndarray) -> None:
    start = kin.fk(home)
    traj = plan_linear_move(kin, home, start * SE3.Rz(0.8), vmax=VMAX, amax=AMAX, max_ang_speed=0.5)
    assert traj.duration >= 0.8 / 0.5
    assert kin.pose_error(kin.fk(traj.q[-1]), start)[0] <= 1e-3  # pure rotation: TCP stays put


def test_linear_move_to_current_pose_is_a_hold(kin: Kinematics, home: np.ndarray) -> None:
    traj = plan_linear_move(kin, home, kin.fk(home), vmax=VMAX, amax=AMAX)
    assert traj.duration == 0.0 and np.array_equal(traj.q[0], home)


def test_linear_move_requiring_a_flip_raises(kin: Kinematics, home: np.ndarray) -> None:
    # Turning the hand 2.5 rad about its axis takes joint 7 past its limit
    # (0.785 + 2.5 > 2.967); the rest of the turn needs another arm configuration.
    q0 = kin.ik(SE3(0.35, 0.0, 0.4) * SE3.Rx(np.pi), home)
    target = kin.fk(q0) * SE3.Rz(2.5)
    with pytest.raises(KinematicsError) as err:
        plan_linear_move(kin, q0, target, vmax=VMAX, amax=AMAX)
    assert not isinstance(err.value, UnreachableError)
    msg = str(err.value)
    assert "flip" in msg and "panda_joint" in msg and "waypoint" in msg and "%" in msg


def test_linear_move_unreachable_names_waypoint(home: np.ndarray) -> None:
    # joints boxed to +-0.3 rad around home: a 0.4 m sideways move runs out of range
    boxed = Kinematics.from_model(get_model("panda"), home - 0.3, home + 0.3)
    target = SE3(0.0, 0.4, 0.0) * boxed.fk(home)
    with pytest.raises(UnreachableError, match=r"waypoint \d+ of \d+ \(\d+% of the path\)"):
        plan_linear_move(boxed, home, target, vmax=VMAX, amax=AMAX)


# ---------------------------------------------------------------- user waypoints
def test_timed_trajectory_shifts_and_differentiates() -> None:
    t = np.array([1.0, 1.5, 2.0, 3.0])
    q = np.outer(t, [0.2, -0.4])  # constant velocity
    traj = timed_trajectory(t, q, n=2)
    assert traj.t[0] == 0.0 and traj.duration == pytest.approx(2.0)
    assert np.allclose(traj.qd, [[0.2, -0.4]] * 4)
    single = timed_trajectory([0.0], [[0.1, 0.2]])
    assert single.duration == 0.0 and np.all(single.qd == 0)


@pytest.mark.parametrize(
    "t, q, n, pattern",
    [
        ([0.0, 1.0, 1.0], np.zeros((3, 2)), None, r"t\[2\] = 1.0 s is not after t\[1\]"),
        ([0.0, 2.0, 1.0], np.zeros((3, 2)), None, r"t\[2\] = 1.0"),
        ([-1.0, 1.0], np.zeros((2, 2)), None, r"t\[0\] = -1.0 s is negative"),
        ([0.0, np.nan], np.zeros((2, 2)), None, r"t\[1\] = nan"),
        ([0.0, 1.0], [[0.0, 0.0], [np.inf, 0.0]], None, r"waypoint 1, joint 0 = inf"),
        ([0.0, 1.0, 2.0], np.zeros((2, 2)), None, "3 times but 2 waypoints"),
        ([0.0, 1.0], np.zeros((2, 3)), 7, "3 joint values each; this arm has 7"),
        ([], np.zeros((0, 2)), None, "no waypoints"),
    ],
)
def test_timed_trajectory_errors(t: list[float], q: np.ndarray, n: int | None, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        timed_trajectory(t, q, n=n)
