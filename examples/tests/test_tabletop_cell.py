"""An example CI suite for the example cells, written with the robocell pytest plugin.

Run it like any pytest suite (robocell's plugin is active once robocell is installed):

    pytest examples/tests                              # in simulation, seed 0
    pytest examples/tests --robocell-seed 7            # other randomised object poses
    pytest examples/tests --robocell-pictures out/     # a PNG of the cell of every failing test
    pytest examples/tests --robocell-backend tcp://arm:5555   # also the tests marked hardware

Each test gets a fresh cell, seeded, closed afterwards; the assertions say
what should be true of the world in plain words, and when one fails it
prints where every object actually is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from robocell.run.runner import load_registry, run_file
from robocell.testing import assert_gripper_empty, assert_holding, assert_in, assert_on, assert_on_table

EXAMPLES = Path(__file__).resolve().parents[1]
TABLETOP = EXAMPLES / "cells" / "tabletop.yaml"
KUKA = EXAMPLES / "cells" / "kuka.yaml"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_red_block_goes_in_the_bin(robocell_cell, robocell_skills, seed: int) -> None:
    cell = robocell_cell(TABLETOP, seed=seed)
    robocell_skills(cell).pick_and_place("red_block", "bin")
    assert_in(cell, "red_block", "bin")
    assert_on_table(cell, "green_block")  # nothing else was disturbed
    assert_gripper_empty(cell)


def test_pick_holds_then_place_fills_a_tray_slot(robocell_cell, robocell_skills) -> None:
    cell = robocell_cell(TABLETOP)
    s = robocell_skills(cell)
    s.pick("red_block")
    assert_holding(cell, "red_block")
    s.place("tray.slot1")
    assert_in(cell, "red_block", "tray.slot1")
    assert_gripper_empty(cell)


def test_blue_stacks_on_green(robocell_cell, robocell_skills) -> None:
    cell = robocell_cell(TABLETOP)
    robocell_skills(cell).stack("blue_block", on="green_block")
    assert_on(cell, "blue_block", "green_block")


def test_clear_table_program_on_the_kuka_cell(robocell_cell) -> None:
    cell = robocell_cell(KUKA, seed=3)
    run_file(cell, EXAMPLES / "programs" / "clear_table.yaml", load_registry())
    for block in ("red_block", "green_block", "blue_block"):
        assert_in(cell, block, "bin")
    assert_gripper_empty(cell)


@pytest.mark.hardware
def test_pick_and_place_on_the_real_arm(robocell_cell, robocell_skills) -> None:
    # Runs only with --robocell-backend tcp://host:port; the same skills, the same assertions.
    cell = robocell_cell(TABLETOP)
    robocell_skills(cell).pick_and_place("red_block", "bin")
    assert_gripper_empty(cell)
