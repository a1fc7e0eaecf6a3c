"""Kinematics: FK against PyBullet on the same URDF, verified IK, limits, errors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from spatialmath import SE3

from robocell.errors import ConfigError, KinematicsError, UnreachableError
from robocell.motion.kinematics import Kinematics
from robocell.motion.arm_models import get_model

MODELS = ["panda", "kuka_iiwa"]
# a link half way up each arm, to check intermediate frames as well as the TCP
MIDDLE_LINK = {"panda": "panda_link4", "kuka_iiwa": "lbr_iiwa_link_4"}


@pytest.fixture(scope="module", params=MODELS)
def kin(request: pytest.FixtureRequest) -> Kinematics:
    return Kinematics.from_model(get_model(request.param))


@pytest.fixture()
def bullet() -> Iterator[object]:
    import pybullet

    cid = pybullet.connect(pybullet.DIRECT)
    try:
        yield cid
    finally:
        pybullet.disconnect(cid)


def _bullet_pose(cid: object, body: int, link_index: int) -> SE3:
    import pybullet

    st = pybullet.getLinkState(body, link_index, computeForwardKinematics=True, physicsClientId=cid)
    rot = np.array(pybullet.getMatrixFromQuaternion(st[5])).reshape(3, 3)
    return SE3.Rt(rot, st[4], check=False)


def test_fk_matches_pybullet(kin: Kinematics, bullet: object) -> None:
    import pybullet

    model = kin.model
    body = pybullet.loadURDF(str(model.resolved_urdf()), useFixedBase=True, physicsClientId=bullet)
    joints, links = {}, {}
    for i in range(pybullet.getNumJoints(body, physicsClientId=bullet)):
        info = pybullet.getJointInfo(body, i, physicsClientId=bullet)
        joints[info[1].decode()] = i
        links[info[12].decode()] = i
    rng = np.random.default_rng(7)
    worst_p = worst_r = 0.0
    for _ in range(50):
        q = rng.uniform(kin.lower, kin.upper)
        for name, val in zip(kin.joint_names, q):
            pybullet.resetJointState(body, joints[name], float(val), physicsClientId=bullet)
        for link, ours in (
            (model.tcp_link, kin.fk(q)),
            (MIDDLE_LINK[model.name], kin.fk_link(q, MIDDLE_LINK[model.name])),
        ):
            pe, re = kin.pose_error(_bullet_pose(bullet, body, links[link]), ours)
            worst_p, worst_r = max(worst_p, pe), max(worst_r, re)
    assert worst_p <= 1e-4, f"{model.name}: FK differs from PyBullet by {worst_p} m"
    assert worst_r <= 1e-3, f"{model.name}: FK differs from PyBullet by {worst_r} rad"


def test_chain_has_exactly_the_arm_joints(kin: Kinematics) -> None:
    assert kin.n == 7 and kin.joint_names == kin.model.joint_names
    assert kin.lower.shape == kin.upper.shape == (7,)
    assert np.array_equal(kin.lower, kin.urdf_lower)
    with pytest.raises(ValueError):
        kin.lower[0] = 0.0  # read-only: the limits are part of the static model


def test_fk_link_of_tcp_equals_fk(kin: Kinematics) -> None:
    q = np.array(kin.model.home)
    assert kin.pose_error(kin.fk(q), kin.fk_link(q, kin.model.tcp_link)) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert kin.pose_error(kin.fk_link(q, kin.model.base_link), SE3()) == pytest.approx((0.0, 0.0), abs=1e-12)


def test_ik_random_reachable_targets(kin: Kinematics) -> None:
    # Uniform random configurations include folded ones right at the joint
    # limits, which a bounded retry budget misses ~0.3 % of the time (see
    # benchmarks/bench_ik.py); every answer given must be verified, though.
    rng = np.random.default_rng(11)
    home = np.array(kin.model.home)
    solved = 0
    for _ in range(40):
        target = kin.fk(rng.uniform(kin.lower, kin.upper))
        try:
            q = kin.ik(target, home)
        except UnreachableError:
            continue
        pe, re = kin.pose_error(kin.fk(q), target)
        assert pe <= 1e-3 and re <= 1e-2
        assert kin.within_limits(q)
        solved += 1
    assert solved >= 39


def test_ik_is_deterministic_and_stays_near_seed(kin: Kinematics) -> None:
    home = np.array(kin.model.home)
    target = kin.fk(home + 0.05)
    q1 = kin.ik(target, home)
    assert np.array_equal(q1, kin.ik(target, home))
    # a small Cartesian step from a known solution must not change configuration
    q2 = kin.ik(SE3(0.01, 0.0, 0.0) * target, q1)
    assert np.max(np.abs(q2 - q1)) < 0.1


def test_ik_unreachable_names_residual(kin: Kinematics) -> None:
    with pytest.raises(UnreachableError) as err:
        kin.ik(SE3(3.0, 0.0, 0.5))
    msg = str(err.value)
    assert "residual" in msg and "mm" in msg and "3.0" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_ik_non_finite_target_raises(kin: Kinematics, bad: float) -> None:
    t = np.eye(4)
    t[0, 3] = bad
    with pytest.raises(KinematicsError) as err:
        kin.ik(SE3(t, check=False))
    assert not isinstance(err.value, UnreachableError)
    assert "finite" in str(err.value)


def test_ik_bad_seed_and_q(kin: Kinematics) -> None:
    with pytest.raises(KinematicsError, match="7"):
        kin.fk(np.zeros(6))
    with pytest.raises(KinematicsError, match="not finite"):
        kin.ik(kin.fk(np.array(kin.model.home)), np.full(7, np.nan))


def test_tightened_limits_are_respected() -> None:
    model = get_model("panda")
    home = np.array(model.home)
    lower, upper = home - 0.4, home + 0.4
    kin = Kinematics.from_model(model, lower, upper)
    assert np.array_equal(kin.lower, lower) and np.array_equal(kin.upper, upper)
    assert not np.array_equal(kin.urdf_lower, lower)
    rng = np.random.default_rng(3)
    for _ in range(15):
        target = kin.fk(rng.uniform(lower, upper))
        q = kin.ik(target, home)
        assert np.all(q >= lower) and np.all(q <= upper)
        assert kin.pose_error(kin.fk(q), target)[0] <= 1e-3
    # reachable with the URDF limits but not inside the tightened ones
    far = np.clip(home + 1.2, kin.urdf_lower, kin.urdf_upper)
    with pytest.raises(UnreachableError):
        kin.ik(kin.fk(far), home, max_attempts=10)


def test_with_limits_shares_the_model(kin: Kinematics) -> None:
    home = np.array(kin.model.home)
    boxed = kin.with_limits(home - 0.2, home + 0.2)
    assert np.array_equal(boxed.lower, home - 0.2) and np.array_equal(kin.lower, kin.urdf_lower)
    q = boxed.ik(kin.fk(home + 0.1), home)
    assert boxed.within_limits(q) and kin.pose_error(kin.fk(q), kin.fk(home + 0.1))[0] <= 1e-3
    assert boxed.tcp_link == kin.model.tcp_link and boxed.base_link == kin.model.base_link


def test_tightened_limits_outside_urdf_raise() -> None:
    model = get_model("panda")
    kin0 = Kinematics.from_model(model)
    lower = np.array(kin0.urdf_lower)
    lower[3] -= 0.2
    with pytest.raises(ConfigError) as err:
        Kinematics.from_model(model, lower=lower)
    msg = str(err.value)
    assert "panda_joint4" in msg and f"{lower[3]:.4f}" in msg and "URDF" in msg
    with pytest.raises(ConfigError, match="7"):
        Kinematics.from_model(model, lower=np.zeros(3))


def test_unknown_link_raises(kin: Kinematics) -> None:
    with pytest.raises(ConfigError, match="no_such_link"):
        kin.fk_link(np.array(kin.model.home), "no_such_link")
