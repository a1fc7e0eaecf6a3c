"""Programs: YAML round trip, validation against the cell before motion, running."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robocell.core.cell import Cell
from robocell.cellfile.spec import load_cell_spec
from robocell.errors import ProgramError
from robocell.skills import Program, SkillContext, SkillRegistry, Step

from tests.conftest import ROOT, TABLETOP

PROGRAMS = ROOT / "examples" / "programs"


@pytest.mark.parametrize("path", sorted(PROGRAMS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_programs_round_trip_and_validate(path: Path, tmp_path: Path) -> None:
    prog = Program.load(path)
    again = Program.from_yaml(prog.to_yaml())
    assert again == prog
    saved = Program.load(prog.save(tmp_path / "p.yaml"))
    assert saved == prog
    prog.validate_for(load_cell_spec(TABLETOP), SkillRegistry.default())


def test_round_trip_keeps_argument_types(tmp_path: Path) -> None:
    prog = Program(name="t", steps=[
        Step(skill="move_to", args={"pose": [0.4, 0.0, 0.3, 3.14159, 0.0, 0.0], "linear": True}),
        Step(skill="close_gripper", args={"force": 20.5}),
        Step(skill="home"),
    ])
    back = Program.load(prog.save(tmp_path / "t.yaml"))
    assert back.steps[0].args["pose"] == [0.4, 0.0, 0.3, 3.14159, 0.0, 0.0]
    assert back.steps[0].args["linear"] is True
    assert back.steps[1].args["force"] == 20.5
    assert back.steps[2].args == {}


def test_validation_lists_every_problem_before_motion() -> None:
    prog = Program.from_yaml(
        "version: 1\nsteps:\n"
        "  - pik: {object: red_block}\n"
        "  - pick: {object: purple_block}\n"
        "  - place: {target: 3}\n"
        "  - close_gripper: {force: strong}\n"
    )
    with pytest.raises(ProgramError) as info:
        prog.validate_for(load_cell_spec(TABLETOP), SkillRegistry.default())
    msg = str(info.value)
    assert "step 1 (pik): unknown skill 'pik'; available skills:" in msg and "pick_and_place" in msg
    assert "unknown object 'purple_block'; the cell has: red_block, green_block, blue_block" in msg
    assert "step 3 (place)" in msg and "must be a target name" in msg
    assert "step 4 (close_gripper)" in msg and "'strong'" in msg


@pytest.mark.parametrize("text,needle", [
    ("steps: [", "YAML syntax error at line"),
    ("- home", "expected a mapping"),
    ("version: 2\nsteps: [home]", "version = 2 is not supported"),
    ("version: 1\nstep: [home]", "unknown field(s) step"),
    ("version: 1\nsteps: []", "non-empty list"),
    ("version: 1\nsteps: [{pick: {object: a}, home: null}]", "write a step as"),
])
def test_malformed_program_files(text: str, needle: str) -> None:
    with pytest.raises(ProgramError, match=None) as info:
        Program.from_yaml(text)
    assert needle in str(info.value)


def test_program_runs_with_progress(tabletop: Cell) -> None:
    prog = Program.load(PROGRAMS / "pick_place_red.yaml")
    events: list[tuple[int, str]] = []
    ctx = SkillContext.create(tabletop)
    result = prog.run(ctx, on_step=lambda i, step, status: events.append((i, status)))
    assert events == [(1, "start"), (1, "done")]
    assert result.steps == 1
    assert tabletop.spec.fixture("bin").contains(tabletop.object_pose("red_block").t)


def test_invalid_program_moves_nothing(tabletop: Cell) -> None:
    prog = Program.from_yaml("version: 1\nsteps:\n  - home\n  - pick: {object: nope}\n")
    arm = tabletop.arm()
    q0 = arm.state().q
    with pytest.raises(ProgramError):
        prog.run(SkillContext.create(tabletop))
    np.testing.assert_allclose(arm.state().q, q0, atol=1e-6)
