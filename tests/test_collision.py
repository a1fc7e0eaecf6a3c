"""Keep-out collision detection in simulation: a touch latches a protective stop that names it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from robocell.core.arm import Mode
from robocell.core.cell import Cell
from robocell.cellfile.spec import parse_cell_spec
from robocell.errors import MotionCancelled, MotionError, ProtectiveStop, SkillFailed
from robocell.skills import SkillContext
from robocell.skills.geometry import top_down
from robocell.cellfile.yamlio import load_yaml

from tests.test_obstacles import WALL

NEAR_SIDE = np.array([0.50, -0.12, 0.06])  # TCP low in front of the wall (top at 0.16 m)
FAR_SIDE = np.array([0.50, 0.12, 0.06])


@pytest.fixture
def wall_cell() -> Iterator[Cell]:
    with Cell.load(WALL) as cell:
        yield cell


def _world(cell: Cell):  # type: ignore[no-untyped-def]
    return cell.backend.world  # type: ignore[attr-defined]


def test_arm_driven_into_the_wall_latches_a_stop_naming_the_link(wall_cell: Cell) -> None:
    arm, world = wall_cell.arm(), _world(wall_cell)
    arm.move_pose(top_down(NEAR_SIDE + [0, -0.1, 0.3], 0.0))  # from home, well clear of the wall
    arm.move_pose(top_down(NEAR_SIDE, 0.0), linear=True)
    assert world.collisions == [] and arm.state().mode is Mode.IDLE
    with pytest.raises(MotionCancelled) as info:
        arm.move_pose(top_down(FAR_SIDE, 0.0), linear=True)
    text = str(info.value)
    assert "the motion was stopped before it finished" in text
    assert "the arm reports: collision: panda link panda_" in text and "touched keep-out fixture 'wall'" in text
    assert len(world.collisions) == 1
    t, what, fixture = world.collisions[0]
    assert what.startswith("panda link panda_") and fixture == "wall" and 0 < t <= world.time
    state = arm.state()
    assert state.mode is Mode.STOPPED and state.faults == (f"collision: {what} touched keep-out fixture 'wall'",)
    # the stop decelerated the arm: it does not go on through the wall
    wall_cell.wait(0.5)
    assert float(np.max(np.abs(arm.state().qd))) < 0.05 and arm.state().tcp.t[1] < 0.0
    # latched: no motion and no gripper command until reset
    with pytest.raises(ProtectiveStop, match="latched protective stop \\(collision: panda link"):
        arm.move_pose(top_down(NEAR_SIDE + [0, 0, 0.1], 0.0))
    with pytest.raises(ProtectiveStop, match="gripper of arm 'panda': the arm is in a latched protective stop"):
        wall_cell.gripper().open()
    arm.reset()
    arm.move_pose(top_down(NEAR_SIDE, 0.0), linear=True)  # backs away: the old touch is not a new one
    assert arm.state().mode is Mode.IDLE and len(world.collisions) == 1


def test_a_held_block_driven_into_the_wall_stops_the_arm_and_stays_held(wall_cell: Cell) -> None:
    ctx = SkillContext.create(wall_cell, log=lambda s: None)
    ctx.call("pick", object="red_block")
    p = wall_cell.object_pose("red_block").t
    # the block leads, but the 16 cm wall also reaches the hand: whichever touches first is named
    with pytest.raises(MotionCancelled, match="collision: (red_block|panda link panda_\\w+) touched keep-out fixture 'wall'"):
        wall_cell.arm().move_pose(top_down(np.array([p[0], 0.15, 0.10]), 0.0), linear=True)
    assert len(_world(wall_cell).collisions) == 1 and _world(wall_cell).collisions[0][2] == "wall"
    wall_cell.wait(0.5)
    assert wall_cell.held_object() == "red_block"  # a stop does not drop the load


def test_a_skill_that_collides_fails_naming_the_collision(wall_cell: Cell) -> None:
    ctx = SkillContext.create(wall_cell, log=lambda s: None)
    ctx.call("pick", object="red_block")
    wall_cell.arm().move_pose(top_down(wall_cell.arm().state().tcp.t * [1, 1, 0] + [0, 0, 0.06], 0.0), linear=True)
    with pytest.raises(SkillFailed, match="failed: .*collision: .* touched keep-out fixture 'wall'"):
        ctx.call("move_to", pose=[*FAR_SIDE, np.pi, 0.0, 0.0], linear=True)


def test_no_contact_no_stop(wall_cell: Cell) -> None:
    ctx = SkillContext.create(wall_cell, log=lambda s: None)
    ctx.call("pick_and_place", object="green_block", target="bin")
    ctx.call("move_to", target="above_wall")  # 15 cm over the wall's top
    assert _world(wall_cell).collisions == [] and wall_cell.arm().state().mode is Mode.IDLE


def test_without_keep_out_nothing_watches() -> None:
    data = load_yaml(WALL.read_text())
    data["fixtures"][0]["keep_out"] = False
    spec = parse_cell_spec(data, "wall-no-keep-out", WALL.parent)
    from robocell.core.backends import create_backend

    with Cell(spec, create_backend(spec, "sim")) as cell:
        assert cell.backend.keep_out is None  # type: ignore[attr-defined]
        arm = cell.arm()
        arm.move_pose(top_down(NEAR_SIDE, 0.0))
        with pytest.raises(MotionError) as info:  # blocked by the wall: a tracking error, no stop
            arm.move_pose(top_down(FAR_SIDE, 0.0), linear=True)
        assert not isinstance(info.value, MotionCancelled)
        assert _world(cell).collisions == [] and arm.state().mode is not Mode.STOPPED


def test_sim_driver_reports_a_collision_once_as_a_hardware_fault() -> None:
    from robocell.cellfile.spec import load_cell_spec
    from robocell.hardware.drivers.sim import SimDriver

    driver = SimDriver(load_cell_spec(WALL), "panda")
    try:
        assert driver.backend.keep_out is not None and driver.read().faults == ()
        driver.world.collisions.append((1.0, "red_block", "wall"))
        assert driver.read().faults == ("collision: red_block touched keep-out fixture 'wall'",)
        assert driver.read().faults == ()  # an event: the server latches it until reset
        assert driver.arm.state().mode is not Mode.STOPPED  # the server, not the driver, stops the arm
    finally:
        driver.close()


def test_builtin_pick_and_place_over_the_wall_any_collision_is_detected() -> None:
    """The builtin carry is not made to clear walls: when it touches one, the failure says so."""
    outcomes = []
    for seed in range(8):
        with Cell.load(WALL, seed=seed) as cell:
            ctx = SkillContext.create(cell, log=lambda s: None)
            try:
                ctx.call("pick_and_place", object="red_block", target="tray")
                error = None
            except SkillFailed as exc:
                error = str(exc)
            hits = _world(cell).collisions
            if hits:
                assert error is not None and "touched keep-out fixture 'wall'" in error, (seed, error)
                assert cell.arm().state().mode is Mode.STOPPED
            else:
                assert error is None or "collision" not in error
            outcomes.append((error is None, bool(hits)))
    assert len(outcomes) == 8
