"""The Universal Robots driver against a fake of ur_rtde (and a fake Robotiq URCap socket)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from robocell.cellfile.spec import CellSpec, load_cell_spec
from robocell.errors import BackendError, ConfigError, SafetyViolation
from robocell.hardware.driver import Driver, create_driver
from robocell.hardware.drivers.robotiq import RobotiqClient
from robocell.hardware.drivers.ur import URDriver
from robocell.motion.kinematics import Kinematics

from tests.conftest import ROOT, TABLETOP
from tests.hardware.fake_ur import FakeConnections, FakeUR, FakeURCap

UR5E = ROOT / "examples" / "cells" / "ur5e.yaml"
HOST = "192.0.2.10"  # TEST-NET-1: never a real host

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def spec() -> CellSpec:
    return load_cell_spec(UR5E)


@pytest.fixture
def urcap() -> Iterator[FakeURCap]:
    cap = FakeURCap()
    yield cap
    cap.close()


@pytest.fixture
def fake(urcap: FakeURCap) -> FakeConnections:
    return FakeConnections(FakeUR(), urcap)


@pytest.fixture
def driver(spec: CellSpec, fake: FakeConnections) -> Iterator[URDriver]:
    d = URDriver(spec, "ur5e", host=HOST, rtde=fake, gripper_poll=0.0)
    yield d
    d.close()


def calls(fake: FakeConnections, name: str) -> list[tuple[object, ...]]:
    return [args for n, args in fake.robot.calls if n == name]


# ---- description and state ------------------------------------------------------------
def test_info_comes_from_the_cell_model(driver: URDriver) -> None:
    assert isinstance(driver, Driver)
    info = driver.info
    assert info.joint_names == ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                                "wrist_1_joint", "wrist_2_joint", "wrist_3_joint")
    # hardware limits from the URDF (+-2 pi, elbow +-pi), not the cell's tighter envelope
    np.testing.assert_allclose(info.upper, [2 * math.pi] * 2 + [math.pi] + [2 * math.pi] * 3)
    np.testing.assert_allclose(info.lower, -info.upper)
    assert info.control_rate == 500.0
    assert info.gripper_max_width == pytest.approx(0.085)
    assert "Universal Robots" in info.vendor


def test_registry_builds_the_driver_with_options(spec: CellSpec, fake: FakeConnections) -> None:
    d = create_driver("ur_rtde", spec, "ur5e", host=HOST, rtde=fake, gripper="none")
    try:
        assert isinstance(d, URDriver) and fake.hosts == [HOST, HOST]
    finally:
        d.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_read_reports_joints_and_the_model_tcp(spec: CellSpec, driver: URDriver, fake: FakeConnections,
                                               seed: int) -> None:
    rng = np.random.default_rng(seed)
    fake.robot.q = rng.uniform(-math.pi, math.pi, 6)
    fake.robot.qd = rng.uniform(-1, 1, 6)
    state = driver.read()
    np.testing.assert_allclose(state.q, fake.robot.q)
    np.testing.assert_allclose(state.qd, fake.robot.qd)
    # The controller's TCP (DH flange pose x the offset the driver set with setTcp, sent as a
    # rotation vector) must be the cell model's grasp_target from the URDF.
    kin = Kinematics.from_model(spec.arm("ur5e").arm_model())
    assert state.tcp is not None
    np.testing.assert_allclose(state.tcp, kin.fk_matrix(state.q), atol=1e-9)
    assert state.faults == ()


def test_set_tcp_sends_the_flange_to_grasp_target_offset(driver: URDriver, fake: FakeConnections) -> None:
    (offset,), = calls(fake, "setTcp")
    np.testing.assert_allclose(offset, [0, 0, 0.145, 0, 0, 0], atol=1e-12)


# ---- motion ------------------------------------------------------------------------------
def test_command_is_one_servoj_with_the_configured_timing(spec: CellSpec, fake: FakeConnections) -> None:
    d = URDriver(spec, "ur5e", host=HOST, rtde=fake, gripper="none",
                 frequency="125", lookahead="0.05", gain="1000")  # strings, as the CLI passes them
    try:
        q = fake.robot.q + 0.01
        d.command(q, np.zeros(6))
        (args,) = calls(fake, "servoJ")
        np.testing.assert_allclose(args[0], q)
        assert args[3:] == (pytest.approx(1 / 125), 0.05, 1000.0)  # time = one period, lookahead, gain
    finally:
        d.close()


def test_ticks_pace_on_init_and_wait_period(driver: URDriver, fake: FakeConnections) -> None:
    q0 = fake.robot.q.copy()
    fake.robot.calls.clear()
    for _ in range(3):
        driver.read()
        driver.command(q0, np.zeros(6))
        driver.wait_period()
    names = [n for n, _ in fake.robot.calls if n in ("initPeriod", "servoJ", "waitPeriod")]
    assert names == ["initPeriod", "servoJ", "waitPeriod", "initPeriod",
                     "servoJ", "waitPeriod", "initPeriod",
                     "servoJ", "waitPeriod", "initPeriod"]
    assert fake.robot.time == pytest.approx(3 * 0.002)  # exactly one 2 ms period per tick


def test_servo_loop_moves_the_arm_to_the_setpoints(driver: URDriver, fake: FakeConnections) -> None:
    q0 = fake.robot.q.copy()
    goal = q0 + np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.2])
    speeds = []
    for k in range(1, 501):  # 1 s: a 0.5 s cosine ramp of the last joint, then hold
        s = min(k / 250, 1.0)
        driver.command(q0 + (goal - q0) * (1 - math.cos(math.pi * s)) / 2, np.zeros(6))
        driver.wait_period()
        speeds.append(driver.read().qd[5])
    state = driver.read()
    assert abs(state.q[5] - goal[5]) < 1e-3
    assert max(speeds) > 0.3  # it moved at a real speed on the way (peak of the ramp ~0.63 rad/s)
    np.testing.assert_allclose(state.q[:5], q0[:5])


def test_non_finite_setpoint_never_reaches_the_robot(driver: URDriver, fake: FakeConnections) -> None:
    with pytest.raises(SafetyViolation, match="nothing was sent"):
        driver.command(np.array([0, 0, math.nan, 0, 0, 0]), np.zeros(6))
    with pytest.raises(SafetyViolation):
        driver.command(np.zeros(7), np.zeros(7))
    assert calls(fake, "servoJ") == []


def test_stop_decelerates_then_ends_the_script(driver: URDriver, fake: FakeConnections) -> None:
    fake.robot.calls.clear()
    driver.stop()
    assert [n for n, _ in fake.robot.calls] == ["servoStop", "stopScript"]
    assert calls(fake, "servoStop") == [(10.0,)]


def test_close_disconnects_everything_once(spec: CellSpec, fake: FakeConnections) -> None:
    d = URDriver(spec, "ur5e", host=HOST, rtde=fake)
    d.close()
    d.close()
    names = [n for n, _ in fake.robot.calls]
    assert names.count("control.disconnect") == 1 and names.count("receive.disconnect") == 1


# ---- faults ------------------------------------------------------------------------------
def test_protective_stop_is_reported_and_servo_rejected(driver: URDriver, fake: FakeConnections) -> None:
    fake.robot.protective_stop()
    driver.command(fake.robot.q, np.zeros(6))
    faults = driver.read().faults
    assert {"protective_stop", "control_script_stopped", "servo_command_rejected"} <= set(faults)
    assert len(faults) == len(set(faults))  # protective stop reported once, from both sources


def test_emergency_stop_is_reported(driver: URDriver, fake: FakeConnections) -> None:
    fake.robot.emergency_stop()
    assert {"emergency_stop", "robot_emergency_stop"} <= set(driver.read().faults)


@pytest.mark.parametrize(("mode", "fault"), [(5, "safeguard_stop"), (9, "safety_fault"), (42, "safety_mode_42")])
def test_safety_modes_become_named_faults(driver: URDriver, fake: FakeConnections, mode: int, fault: str) -> None:
    fake.robot.safety_mode = mode
    assert fault in driver.read().faults


def test_reduced_mode_is_not_a_fault_but_power_off_is(driver: URDriver, fake: FakeConnections) -> None:
    fake.robot.safety_mode = 2
    assert driver.read().faults == ()
    fake.robot.robot_mode = 3
    assert driver.read().faults == ("robot_not_running:power_off",)


def test_lost_connection_is_a_fault_and_reconnects(driver: URDriver, fake: FakeConnections) -> None:
    fake.robot.drop_connection()
    faults = driver.read().faults
    assert "rtde_receive_disconnected" in faults
    assert ("receive.reconnect", ()) in fake.robot.calls
    assert driver.read().faults == ()  # the fake came back


# ---- gripper -----------------------------------------------------------------------------
def test_gripper_is_activated_on_connect(driver: URDriver, urcap: FakeURCap) -> None:
    assert "SET ACT 1" in urcap.requests and urcap.regs["STA"] == 3


def test_gripper_open_close_width_and_busy(driver: URDriver, urcap: FakeURCap) -> None:
    driver.gripper(0.085, None)  # fully open
    assert urcap.requests[-1].startswith("SET POS 0 SPE ")
    assert driver.gripper_busy()
    urcap.settle()
    assert not driver.gripper_busy()
    assert driver.read().gripper_width == pytest.approx(0.085)

    driver.gripper(None, 100.0)  # close with 100 N -> FOR = (100-20)/(235-20)*255 = 95
    assert urcap.requests[-1].endswith("FOR 95 GTO 1") and urcap.regs["POS"] == 255
    assert driver.gripper_busy() and not driver.read().grasped
    urcap.settle(blocked_at=200)  # stopped on an object
    state = driver.read()
    assert not driver.gripper_busy() and state.grasped
    assert state.gripper_width == pytest.approx(0.085 * 55 / 255)


def test_half_open_maps_to_the_middle_register(driver: URDriver, urcap: FakeURCap) -> None:
    driver.gripper(0.0425, None)
    assert urcap.regs["POS"] == 128  # round(255 - 0.5 * 255)


@pytest.mark.parametrize(("width", "force", "match"), [
    (0.1, None, r"width 0\.1000 m is outside 0\.\.0\.0850"),
    (-0.01, None, "outside"),
    (None, 500.0, r"force 500 N is outside the Robotiq 2F-85's 20\.\.235 N"),
    (None, None, "exactly one of width or force"),
])
def test_gripper_rejects_bad_commands(driver: URDriver, width: float | None, force: float | None,
                                      match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        driver.gripper(width, force)


def test_gripper_fault_and_lost_gripper_are_reported(driver: URDriver, urcap: FakeURCap) -> None:
    urcap.regs["FLT"] = 5
    assert "gripper_fault:0x05" in driver.read().faults
    urcap.drop()
    assert "gripper_connection_lost" in driver.read().faults


def test_gripper_status_is_polled_at_most_every_gripper_poll(spec: CellSpec, fake: FakeConnections,
                                                            urcap: FakeURCap) -> None:
    d = URDriver(spec, "ur5e", host=HOST, rtde=fake, gripper_poll="10")
    try:
        d.read()
        n = len(urcap.requests)
        for _ in range(10):
            d.read()
        assert len(urcap.requests) == n  # a 500 Hz loop must not do 4 socket round trips per tick
    finally:
        d.close()


def test_gripper_none(spec: CellSpec, fake: FakeConnections) -> None:
    d = URDriver(spec, "ur5e", host=HOST, rtde=fake, gripper="none")
    try:
        assert d.info.gripper_max_width == 0.0
        with pytest.raises(ConfigError, match="gripper=none"):
            d.gripper(0.05, None)
    finally:
        d.close()


# ---- set-up errors -----------------------------------------------------------------------
def test_missing_sdk_tells_how_to_install(spec: CellSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rtde_control", None)  # import rtde_control now raises ImportError
    with pytest.raises(BackendError, match=r"pip install 'robocell\[ur\]'"):
        URDriver(spec, "ur5e", host=HOST)


@pytest.mark.parametrize("which", ["receive", "control"])
def test_connection_failure_names_the_host(spec: CellSpec, which: str) -> None:
    fake = FakeConnections(refuse=which)
    with pytest.raises(BackendError, match=rf"{HOST}.*Remote Control mode"):
        URDriver(spec, "ur5e", host=HOST, rtde=fake, gripper="none")
    if which == "control":  # the receive side that did connect is closed again
        assert ("receive.disconnect", ()) in fake.robot.calls


def test_real_ur_rtde_connection_failure(spec: CellSpec) -> None:
    pytest.importorskip("rtde_control", reason="ur_rtde not installed (pip install 'robocell[ur]')")
    # nothing listens on 127.0.0.1:30004 here: the real SDK refuses, the driver explains
    with pytest.raises(BackendError, match=r"127\.0\.0\.1.*verify the IP.*ping 127\.0\.0\.1"):
        URDriver(spec, "ur5e", host="127.0.0.1", gripper="none")


def test_gripper_connection_failure_names_the_port() -> None:
    with pytest.raises(BackendError, match=r"127\.0\.0\.1:1 .*Robotiq URCap"):
        RobotiqClient("127.0.0.1", 1)


@pytest.mark.parametrize(("options", "match"), [
    ({"host": ""}, "host is missing"),
    ({"frequency": "1000"}, r"frequency='1000' is outside 1\.\.500"),
    ({"lookahead": 0.5}, r"lookahead=0\.5 is outside 0\.03\.\.0\.2"),
    ({"gain": "abc"}, "gain='abc' is not a number"),
    ({"gripper": "schunk"}, "gripper='schunk' is not one of: robotiq, none"),
    ({"set_tcp": "maybe"}, "set_tcp='maybe' is not a boolean"),
    ({"gripper_open_pos": 200, "gripper_closed_pos": 100}, "0 <= open < closed <= 255"),
    ({"flange_link": "nope"}, "flange_link=NAME"),
])
def test_bad_options_are_named(spec: CellSpec, options: dict[str, object], match: str) -> None:
    kwargs: dict[str, object] = {"host": HOST, "rtde": FakeConnections(), **options}
    with pytest.raises(ConfigError, match=match):
        URDriver(spec, "ur5e", **kwargs)  # type: ignore[arg-type]


def test_a_seven_joint_arm_is_refused() -> None:
    with pytest.raises(ConfigError, match="has 7 joints.*Universal Robots arm has 6"):
        URDriver(load_cell_spec(TABLETOP), "panda", host=HOST, rtde=FakeConnections(), set_tcp=False)


def test_fake_matches_ur_rtde() -> None:
    rtde_control = pytest.importorskip("rtde_control", reason="ur_rtde not installed")
    rtde_receive = pytest.importorskip("rtde_receive")
    from tests.hardware.fake_ur import FakeRTDEControlInterface, FakeRTDEReceiveInterface

    for fake_cls, real_cls in ((FakeRTDEControlInterface, rtde_control.RTDEControlInterface),
                               (FakeRTDEReceiveInterface, rtde_receive.RTDEReceiveInterface)):
        public = [n for n in vars(fake_cls) if not n.startswith("_")]
        assert public and all(hasattr(real_cls, n) for n in public), [n for n in public if not hasattr(real_cls, n)]
