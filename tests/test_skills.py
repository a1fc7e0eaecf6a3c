"""Built-in skills: physical effects, preconditions and postconditions."""

from __future__ import annotations

import numpy as np
import pytest
from spatialmath import SE3

from robocell.core.cell import Cell
from robocell.errors import SkillError, SkillFailed
from robocell.skills import SkillContext, SkillRegistry, Skills

from tests.conftest import KUKA, TABLETOP


def test_registry_lists_builtin_skills_with_docs() -> None:
    reg = SkillRegistry.default()
    for name in ["home", "move_to", "open_gripper", "close_gripper", "pick", "place",
                 "pick_and_place", "stack"]:
        spec = reg.get(name)
        assert spec.doc, name
    assert reg.get("pick").signature() == "pick(object: object)"
    assert "target: target" in reg.get("pick_and_place").signature()
    with pytest.raises(SkillError, match="available skills: .*pick_and_place"):
        reg.get("pik")


def test_pick_holds_object_by_friction(tabletop: Cell) -> None:
    ctx = SkillContext.create(tabletop)
    z0 = tabletop.object_pose("red_block").t[2]
    ctx.call("pick", object="red_block")
    assert ctx.holding == "red_block"
    assert ctx.gripper.grasped()
    assert tabletop.held_object() == "red_block"  # the finger pads touch it
    assert tabletop.object_pose("red_block").t[2] > z0 + 0.08
    # the object is held by contact, not welded: opening the hand drops it
    ctx.gripper.open()
    tabletop.wait(1.0)
    assert tabletop.object_pose("red_block").t[2] < 0.05
    assert tabletop.held_object() is None


@pytest.mark.parametrize("cell_path", [TABLETOP, KUKA], ids=["panda", "kuka"])
def test_pick_and_place_into_bin(cell_path: object) -> None:
    with Cell.load(cell_path) as cell:
        ctx = SkillContext.create(cell)
        ctx.call("pick_and_place", object="blue_block", target="bin")
        assert cell.spec.fixture("bin").contains(cell.object_pose("blue_block").t)
        assert ctx.holding is None


def test_stack_and_tray_slot(tabletop: Cell) -> None:
    s = Skills(tabletop)
    s.stack("blue_block", on="green_block")
    blue, green = tabletop.object_pose("blue_block").t, tabletop.object_pose("green_block").t
    assert np.linalg.norm(blue[:2] - green[:2]) < 0.015
    assert abs((blue[2] - green[2]) - 0.04) < 0.006
    s.pick_and_place("red_block", "tray.slot3")
    slot = tabletop.frame("tray.slot3").t
    assert np.linalg.norm(tabletop.object_pose("red_block").t[:2] - slot[:2]) < 0.03


def test_pick_precondition_gripper_must_be_empty(tabletop: Cell) -> None:
    ctx = SkillContext.create(tabletop)
    ctx.call("pick", object="red_block")
    with pytest.raises(SkillFailed, match="already holds red_block"):
        ctx.call("pick", object="green_block")


def test_place_precondition_must_hold_something(tabletop: Cell) -> None:
    ctx = SkillContext.create(tabletop)
    with pytest.raises(SkillFailed, match="holds nothing"):
        ctx.call("place", target="bin")


def test_pick_postcondition_detects_missed_grasp(tabletop: Cell) -> None:
    ctx = SkillContext.create(tabletop)
    # the world changed behind the skill's back: the block is not where the cell says
    world = tabletop.backend.world  # type: ignore[attr-defined]
    pose = tabletop.object_pose("green_block")
    real = SE3.Trans(0.0, 0.35, 0.0) * pose
    stale = lambda name: pose if name == "green_block" else world.object_pose(name)  # noqa: E731
    world.set_object_pose("green_block", real)
    tabletop.backend.object_pose = stale  # type: ignore[method-assign]
    with pytest.raises(SkillFailed, match="closed on nothing"):
        ctx.call("pick", object="green_block")


def test_place_postcondition_detects_object_outside_target(tabletop: Cell) -> None:
    ctx = SkillContext.create(tabletop)
    ctx.call("pick", object="red_block")
    # a target frame far from where the object can land: 'inspect' hangs in the air,
    # so the released block falls to the table and the effect check must fail
    with pytest.raises(SkillFailed, match="not in inspect"):
        ctx.call("place", target="inspect")


def test_unreachable_object_fails_cleanly(tabletop: Cell) -> None:
    ctx = SkillContext.create(tabletop)
    world = tabletop.backend.world  # type: ignore[attr-defined]
    world.set_object_pose("red_block", SE3.Trans(1.4, 0.0, 0.02))
    tabletop.wait(0.1)
    with pytest.raises(SkillFailed, match="approaching .red_block. failed.*workspace"):
        ctx.call("pick", object="red_block")


def test_bad_arguments_name_the_problem(tabletop: Cell) -> None:
    ctx = SkillContext.create(tabletop)
    with pytest.raises(SkillError, match="unknown object 'purple_block'.*red_block"):
        ctx.call("pick", object="purple_block")
    with pytest.raises(SkillError, match="unknown parameter 'obj'"):
        ctx.call("pick", obj="red_block")
    with pytest.raises(SkillError, match="missing parameter 'object'"):
        ctx.call("pick")
    with pytest.raises(SkillError, match="NaN"):
        ctx.call("move_to", pose=[0.4, 0.0, float("nan"), 3.14, 0, 0])


def test_user_skills_from_project_folder(tmp_path: object, tabletop: Cell) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "wave.py").write_text(
        "from robocell.skills import skill, SkillContext\n"
        "@skill\n"
        "def wave(ctx: SkillContext, times: int = 2) -> None:\n"
        "    '''Wave the last joint.'''\n"
        "    q = ctx.arm.state().q.copy()\n"
        "    for _ in range(times):\n"
        "        q[6] += 0.2\n"
        "        ctx.arm.move_joints(q)\n"
    )
    reg = SkillRegistry.default([folder])
    assert "wave" in reg
    ctx = SkillContext.create(tabletop, registry=reg)
    q0 = ctx.arm.state().q[6]
    ctx.call("wave", times=2)
    assert abs(ctx.arm.state().q[6] - (q0 + 0.4)) < 0.01
    with pytest.raises(SkillError, match="times"):
        ctx.call("wave", times="lots")
