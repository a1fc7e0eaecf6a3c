"""Placing into a target: occupied slots are refused before the arm moves, and a stacked result is not "placed"."""

from __future__ import annotations

import numpy as np
import pytest

from robocell.core.cell import Cell
from robocell.errors import SkillFailed
from robocell.skills import Skills

from tests.conftest import TABLETOP

OCCUPIED = (r"slot 'tray.slot2' is occupied by 'green_block'; name a free slot \(tray.slot1, tray.slot3\) "
            r"or give 'tray' to use the first free one")


def _still(cell: Cell, q: np.ndarray, red: np.ndarray) -> None:
    """The arm has not moved and red_block lies where it was."""
    assert np.allclose(cell.arm().state().q, q, atol=1e-3)
    assert np.allclose(cell.object_pose("red_block").t, red, atol=1e-3)


def test_built_in_skills_refuse_an_occupied_slot_before_the_arm_moves() -> None:
    with Cell.load(TABLETOP) as cell:
        s = Skills(cell)
        s.pick_and_place("green_block", "tray.slot2")
        q, red = cell.arm().state().q.copy(), cell.object_pose("red_block").t.copy()
        with pytest.raises(SkillFailed, match="pick_and_place: " + OCCUPIED):
            s.pick_and_place("red_block", "tray.slot2")
        _still(cell, q, red)
        s.pick("red_block")  # held: place itself refuses before lowering it onto green_block
        q, red = cell.arm().state().q.copy(), cell.object_pose("red_block").t.copy()
        with pytest.raises(SkillFailed, match="place: " + OCCUPIED):
            s.place("tray.slot2")
        _still(cell, q, red)
        assert s.ctx.holding == "red_block" and cell.held_object() == "red_block"
        s.place("tray")  # the whole tray: the first free slot
        slot1 = cell.frame("tray.slot1").t
        assert np.linalg.norm(cell.object_pose("red_block").t[:2] - slot1[:2]) < 0.03


def test_effect_check_rejects_an_object_stacked_in_the_slot_and_stack_still_works() -> None:
    from robocell.skills.placement import check_placed, placement

    with Cell.load(TABLETOP) as cell:
        s = Skills(cell)
        into_slot2 = placement(s.ctx, "red_block", "tray.slot2", None)  # while slot2 is still free
        s.pick_and_place("green_block", "tray.slot2")
        s.stack("red_block", on="green_block")  # stacking is what stack is for: it succeeds
        red, green = cell.object_pose("red_block").t, cell.object_pose("green_block").t
        assert abs((red[2] - green[2]) - 0.04) < 0.006
        # red_block is over slot2, but on green_block: that is not "in slot 2"
        ok, why = into_slot2.check(cell.object_pose("red_block"))
        assert not ok and "underside is 40 mm above the floor of slot 'tray.slot2'" in why, why
        with pytest.raises(SkillFailed, match=r"'red_block' is not in slot 'tray.slot2': .* on top of "
                                              r"'green_block' \(to put one object on another, use stack\)"):
            check_placed(s.ctx, into_slot2, "red_block", "place")
        # nor may anything be stacked on green_block now that red_block sits on it
        q = cell.arm().state().q.copy()
        with pytest.raises(SkillFailed, match="stack: 'green_block' already has 'red_block' on top of it"):
            s.stack("blue_block", on="green_block")
        assert np.allclose(cell.arm().state().q, q, atol=1e-3)



def test_an_object_that_lands_on_another_inside_a_bin_is_in_the_bin() -> None:
    from spatialmath import SE3

    from robocell.skills.placement import check_placed, placement

    with Cell.load(TABLETOP) as cell:
        s = Skills(cell)
        world = cell.backend.world  # type: ignore[attr-defined]
        into_bin = placement(s.ctx, "red_block", "bin", None)
        floor = cell.spec.fixture("bin").pose.se3()
        green = SE3(float(floor.t[0]), float(floor.t[1]), into_bin.support_z + 0.021)  # type: ignore[operator]
        world.set_object_pose("green_block", green)
        world.set_object_pose("red_block", SE3(0, 0, 0.045) * green)  # dropped onto green_block
        world.settle(0.5)
        assert abs(cell.object_pose("red_block").t[2] - cell.object_pose("green_block").t[2] - 0.04) < 0.006
        check_placed(s.ctx, into_bin, "red_block", "place")  # a pile in a bin is in the bin
        world.set_object_pose("green_block", SE3(0.0, 0.3, 0.0) * green)  # green now outside, on the table
        world.set_object_pose("red_block", SE3(0.0, 0.3, 0.045) * green)
        world.settle(0.5)
        with pytest.raises(SkillFailed, match="'red_block' is not in 'bin'"):
            check_placed(s.ctx, into_bin, "red_block", "place")
