"""The UR driver on a real Universal Robots arm (or URSim).  Skipped unless asked for.

Run, with the robot in Remote Control mode and nothing within reach of its last joint:

    .venv/bin/python -m pytest tests/hardware/test_ur_real.py --hardware-backend ur://192.168.1.10

It reads the state and turns the last joint (wrist_3) by 0.2 rad and back, slowly
(2 s each way), through the same read / command / wait_period loop ArmServer runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from robocell.cellfile.spec import load_cell_spec
from robocell.hardware.drivers.ur import URDriver

from tests.conftest import ROOT

pytestmark = [pytest.mark.hardware, pytest.mark.timeout(60)]

UR5E = ROOT / "examples" / "cells" / "ur5e.yaml"


@pytest.fixture
def driver(request: pytest.FixtureRequest) -> Iterator[URDriver]:
    address = str(request.config.getoption("--hardware-backend") or "")
    if not address.startswith("ur://"):
        pytest.skip("the real-UR test needs --hardware-backend ur://ROBOT_IP")
    pytest.importorskip("rtde_control", reason="pip install 'robocell[ur]'")
    d = URDriver(load_cell_spec(UR5E), "ur5e", host=address[len("ur://"):], gripper="none", set_tcp=False)
    yield d
    try:
        d.stop()
    finally:
        d.close()


def test_reads_state(driver: URDriver) -> None:
    state = driver.read()
    assert state.q.shape == (6,) and np.all(np.isfinite(state.q))
    assert state.tcp is not None and abs(np.linalg.det(state.tcp[:3, :3]) - 1) < 1e-6
    assert state.faults == (), f"clear these on the pendant first: {state.faults}"


def test_slow_servo_of_the_last_joint_and_back(driver: URDriver) -> None:
    q0 = driver.read().q.copy()
    n = int(2.0 * driver.info.control_rate)  # 2 s each way: peak 0.16 rad/s
    for sign in (1.0, -1.0):
        start = driver.read().q.copy() if sign < 0 else q0
        for k in range(1, n + 1):
            s = (1 - math.cos(math.pi * k / n)) / 2
            target = start.copy()
            target[5] = start[5] + sign * 0.2 * s
            driver.read()
            driver.command(target, np.zeros(6))
            driver.wait_period()
        for _ in range(int(0.5 * driver.info.control_rate)):  # hold while servoJ settles
            driver.read()
            driver.command(target, np.zeros(6))
            driver.wait_period()
        state = driver.read()
        assert state.faults == ()
        assert abs(state.q[5] - target[5]) < 0.01
    np.testing.assert_allclose(driver.read().q, q0, atol=0.01)
