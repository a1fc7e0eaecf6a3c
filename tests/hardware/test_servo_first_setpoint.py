"""A servo stream's first setpoint, on an arm that measures a little off its command (in-process server)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from robocell.cellfile.spec import load_cell_spec
from robocell.hardware.server import ArmServer
from robocell.motion.kinematics_setup import arm_parts

from tests.conftest import TABLETOP
from tests.hardware.fakedriver import FollowingDriver
from tests.hardware.rawclient import RawClient

SAG = 0.012  # rad: joint 1 hangs this far below its command (gravity, or a lagging arm that settled in tolerance)


@pytest.fixture
def leased() -> Iterator[RawClient]:
    spec = load_cell_spec(TABLETOP)
    model, kin, safety = arm_parts(spec.arms[0])
    home = np.asarray(model.home, dtype=float)
    sag = np.zeros_like(home)
    sag[0] = -SAG
    driver = FollowingDriver(tuple(kin.joint_names), safety.lower, safety.upper, home, offset=sag)
    with ArmServer(spec, spec.arms[0].name, driver, bind="tcp://127.0.0.1:0", watchdog=2.0,
                   lease_timeout=5.0) as srv:
        c = RawClient(srv.endpoint)
        try:
            rep = c.call("lease_acquire")
            assert rep["ok"], rep
            c.lease = rep["result"]["token"]
            yield c
        finally:
            c.close()


def test_a_stream_may_start_from_the_measured_position(leased: RawClient) -> None:
    s = leased.call("state")["result"]
    q_meas, q_cmd = np.asarray(s["q"]), np.asarray(s["q_cmd"])
    assert q_cmd[0] - q_meas[0] == pytest.approx(SAG, abs=1e-9)
    q = q_meas + np.r_[0.002, np.zeros(len(q_meas) - 1)]  # 0.5 rad/s from where the arm is
    rep = leased.call("servo", {"q": q.tolist(), "dt": 0.004, "seq": 1})
    assert rep["ok"], rep  # judged from the command it would be 3.5 rad/s, over the limit


def test_a_first_setpoint_far_from_both_is_still_refused(leased: RawClient) -> None:
    s = leased.call("state")["result"]
    q = np.asarray(s["q"]) + np.r_[0.05, np.zeros(len(s["q"]) - 1)]  # 12.5 rad/s from either
    rep = leased.call("servo", {"q": q.tolist(), "dt": 0.004, "seq": 1})
    assert not rep["ok"] and rep["code"] == "SAFETY" and "rad/s" in rep["msg"], rep
