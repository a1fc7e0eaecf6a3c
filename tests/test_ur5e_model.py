"""The built-in UR5e model: its URDF's kinematics are UR's DH table, and it picks in simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robocell.cli.main import main
from robocell.motion.kinematics import Kinematics
from robocell.motion.arm_models import get_model

from tests.conftest import ROOT
from tests.hardware.fake_ur import ur5e_dh_fk

UR5E = ROOT / "examples" / "cells" / "ur5e.yaml"


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics.from_model(get_model("ur5e"))


def test_flange_matches_ur5e_dh_forward_kinematics(kin: Kinematics) -> None:
    rng = np.random.default_rng(7)
    configs = [np.zeros(6), np.array(get_model("ur5e").home),
               np.array([0.0, -math.pi / 2, 0.0, -math.pi / 2, 0.0, 0.0])]
    configs += list(rng.uniform(-math.pi, math.pi, (5, 6)))
    for q in configs:
        np.testing.assert_allclose(kin.fk_link(q, "tool0").A, ur5e_dh_fk(q), atol=1e-12)


def test_known_pose_at_zero(kin: Kinematics) -> None:
    # All joints at zero: the arm lies stretched along the base's -x axis (UR's convention),
    # flange at x = a2 + a3, y = -(d4 + d6)... written out from the DH table by hand.
    t = kin.fk_link(np.zeros(6), "tool0").A
    np.testing.assert_allclose(t[:3, 3], [-0.425 - 0.3922, -0.1333 - 0.0996, 0.1625 - 0.0997], atol=1e-12)


def test_ik_round_trip(kin: Kinematics) -> None:
    q = np.array(get_model("ur5e").home)
    target = kin.fk(q + 0.1)
    sol = kin.ik(target, q)
    pos, ang = Kinematics.pose_error(kin.fk(sol), target)
    assert pos < 1e-5 and ang < 1e-4


def test_example_cell_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cell", "check", str(UR5E)]) == 0
    assert "model ur5e, 6 dof" in capsys.readouterr().out


def test_pick_and_place_in_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    program = ROOT / "examples" / "programs" / "pick_place_red.yaml"
    code = main(["run", str(program), "--cell", str(UR5E), "--seed", "1"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "pick_and_place(object='red_block', target='bin') ... ok" in out.out
