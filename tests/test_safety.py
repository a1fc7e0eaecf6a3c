"""Safety envelope: every violation kind raises SafetyViolation naming joint/axis, value and limit."""

from __future__ import annotations

import numpy as np
import pytest

from robocell.errors import ConfigError, SafetyViolation
from robocell.motion.safety import SafetyEnvelope
from robocell.motion.trajectory import JointTrajectory, plan_joint_move

NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
LOWER = np.array([-2.9, -1.7, -2.9, -3.07, -2.9, -0.0175, -2.9])
UPPER = np.array([2.9, 1.7, 2.9, -0.07, 2.9, 3.75, 2.9])
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


@pytest.fixture()
def env() -> SafetyEnvelope:
    return SafetyEnvelope(
        joint_names=NAMES,
        lower=LOWER,
        upper=UPPER,
        max_speed=np.full(7, 2.0),
        max_accel=np.full(7, 5.0),
        workspace_min=np.array([-0.8, -0.8, 0.0]),
        workspace_max=np.array([0.8, 0.8, 1.2]),
    )


def _violation(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SafetyViolation) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_valid_targets_pass(env: SafetyEnvelope) -> None:
    env.check_joints(HOME)
    env.check_joints(UPPER)  # touching a limit is allowed
    env.check_tcp(np.array([0.3, 0.0, 0.5]))
    env.check_step(HOME, HOME + 0.01, 0.01)
    traj = plan_joint_move(HOME, HOME + 0.5, env.max_speed, env.max_accel)
    env.check_trajectory(traj, np.tile([0.3, 0.0, 0.5], (len(traj.t), 1)))


def test_joint_limit(env: SafetyEnvelope) -> None:
    q = HOME.copy()
    q[3] = -3.30
    msg = _violation(env.check_joints, q)
    assert msg.startswith("target: joint panda_joint4 = -3.30 rad is outside the safety limits [-3.07, -0.07] rad")
    # just past the limit still prints differently from the limit
    q[3] = -0.0699
    assert "-0.0699" in _violation(env.check_joints, q, "goal")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_joint(env: SafetyEnvelope, bad: float) -> None:
    q = HOME.copy()
    q[2] = bad
    msg = _violation(env.check_joints, q)
    assert "panda_joint3" in msg and str(bad) in msg and "finite" in msg


def test_wrong_length(env: SafetyEnvelope) -> None:
    msg = _violation(env.check_joints, HOME[:6])
    assert "got 6" in msg and "expected 7" in msg and "panda_joint7" in msg


def test_workspace(env: SafetyEnvelope) -> None:
    msg = _violation(env.check_tcp, np.array([0.3, 0.95, 0.5]))
    assert "TCP y = 0.95 m" in msg and "[-0.80, 0.80] m" in msg
    msg = _violation(env.check_tcp, np.array([0.3, 0.0, np.nan]))
    assert "TCP z = nan" in msg


def test_trajectory_position(env: SafetyEnvelope) -> None:
    q1 = HOME.copy()
    q1[0] = 3.2
    traj = plan_joint_move(HOME, q1, env.max_speed, env.max_accel)
    msg = _violation(env.check_trajectory, traj)
    assert msg.startswith("trajectory: joint panda_joint1 position = 2.9")
    assert "at t = " in msg and "[-2.90, 2.90] rad" in msg


def test_trajectory_speed(env: SafetyEnvelope) -> None:
    traj = plan_joint_move(HOME, HOME + 2.0, np.full(7, 3.0), env.max_accel)
    msg = _violation(env.check_trajectory, traj)
    assert "panda_joint1 speed = 2.0" in msg and "exceeds the limit 2.00 rad/s" in msg and "at t = " in msg


def test_trajectory_speed_implied_by_positions(env: SafetyEnvelope) -> None:
    # velocities claim rest, positions jump: the playback would move at 10 rad/s
    t = np.array([0.0, 0.1])
    q = np.vstack([HOME, HOME + np.array([0, 0, 0, 0, 1.0, 0, 0])])
    msg = _violation(env.check_trajectory, JointTrajectory(t, q, np.zeros_like(q)))
    assert "panda_joint5 speed between samples = 10.00 rad/s" in msg and "t = 0.100 s" in msg


def test_trajectory_accel(env: SafetyEnvelope) -> None:
    traj = plan_joint_move(HOME, HOME + 0.5, env.max_speed, np.full(7, 6.0))
    msg = _violation(env.check_trajectory, traj)
    assert "panda_joint1 acceleration = 6.0" in msg and "limit 5.00 rad/s^2" in msg
    # within the documented 5 % finite-difference allowance passes
    env.check_trajectory(plan_joint_move(HOME, HOME + 0.5, env.max_speed, np.full(7, 5.2)))


def test_trajectory_nan_and_workspace(env: SafetyEnvelope) -> None:
    traj = plan_joint_move(HOME, HOME + 0.2, env.max_speed, env.max_accel)
    pts = np.tile([0.3, 0.0, 0.5], (len(traj.t), 1))
    pts[5, 0] = 0.9
    msg = _violation(env.check_trajectory, traj, pts)
    assert "TCP x = 0.90 m" in msg and f"t = {traj.t[5]:.3f} s" in msg
    msg = _violation(env.check_trajectory, traj, pts[::5])  # a subset names the point
    assert "TCP x = 0.90 m (point 1)" in msg
    assert "tcp_positions has shape (4,)" in _violation(env.check_trajectory, traj, np.zeros(4))


def test_trajectory_wrong_joint_count(env: SafetyEnvelope) -> None:
    traj = plan_joint_move(np.zeros(6), np.ones(6) * 0.1, 1.0, 1.0)
    assert "expected 7" in _violation(env.check_trajectory, traj)


def test_servo_step(env: SafetyEnvelope) -> None:
    q_next = HOME.copy()
    q_next[1] += 0.05
    msg = _violation(env.check_step, HOME, q_next, 0.01)
    assert "setpoint: joint panda_joint2" in msg and "5.00 rad/s" in msg and "limit 2.00 rad/s" in msg
    assert "dt = 0" in _violation(env.check_step, HOME, HOME, 0.0)
    q_next[1] = np.nan
    assert "setpoint: joint panda_joint2 = nan" in _violation(env.check_step, HOME, q_next, 0.01)
    q_far = HOME.copy()
    q_far[5] = 3.8
    assert "panda_joint6 = 3.80 rad is outside" in _violation(env.check_step, q_far, q_far, 0.01)


def test_envelope_validation() -> None:
    with pytest.raises(ConfigError, match="max_speed"):
        SafetyEnvelope(NAMES, LOWER, UPPER, np.full(6, 1.0), np.full(7, 1.0), -np.ones(3), np.ones(3))
    with pytest.raises(ConfigError, match="panda_joint1 lower limit"):
        SafetyEnvelope(NAMES, UPPER, LOWER, np.full(7, 1.0), np.full(7, 1.0), -np.ones(3), np.ones(3))
    with pytest.raises(ConfigError, match="max_accel of joint panda_joint3"):
        acc = np.full(7, 1.0)
        acc[2] = 0.0
        SafetyEnvelope(NAMES, LOWER, UPPER, np.full(7, 1.0), acc, -np.ones(3), np.ones(3))
