"""Obstacles, keep_out and fixture randomize in the cell format, and what skills, frames,
assertions and language grounding make of an obstacle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robocell.core.cell import Cell
from robocell.cellfile.spec import describe, load_cell_spec, parse_cell_spec
from robocell.errors import CellFileError, ConfigError, LanguageError, SkillFailed
from robocell.cellfile.yamlio import load_yaml

from tests.conftest import ROOT, TABLETOP

WALL = ROOT / "examples" / "cells" / "wall.yaml"
MOVING = ROOT / "examples" / "cells" / "tabletop_moving.yaml"
OBSTACLE = {"name": "post", "type": "obstacle", "pose": {"xyz": [0.3, 0.3, 0.0]}, "size": [0.05, 0.05, 0.2]}


def _tabletop_with(fixture: dict[str, Any] | None = None, **changes: Any) -> Any:
    data = load_yaml(TABLETOP.read_text())
    if fixture is not None:
        data["fixtures"].append(fixture)
    for index, update in changes.items():
        data["fixtures"][int(index.removeprefix("f"))].update(update)
    return parse_cell_spec(data, "tabletop+", TABLETOP.parent)


def _error(fixture: dict[str, Any] | None = None, **changes: Any) -> str:
    with pytest.raises(CellFileError) as info:
        _tabletop_with(fixture, **changes)
    return str(info.value)


# ---- the cell format ----------------------------------------------------------------------
def test_obstacle_is_keep_out_by_default_and_bins_and_trays_are_not() -> None:
    spec = _tabletop_with(OBSTACLE)
    post = spec.fixture("post")
    assert post.is_obstacle and post.keep_out
    assert not spec.fixture("bin").keep_out and not spec.fixture("tray").keep_out
    assert not _tabletop_with({**OBSTACLE, "keep_out": False}).fixture("post").keep_out
    assert _tabletop_with(f0={"keep_out": True}).fixture("bin").keep_out
    # solid: nothing is ever inside it, and it has no slots
    assert not post.contains([0.3, 0.3, 0.1]) and post.slot_poses() == {}


def test_obstacle_errors_name_field_value_and_what_to_do() -> None:
    text = _error({**OBSTACLE, "wall": 0.02})
    assert "fixtures[2].wall: 0.02 is not allowed: an obstacle is a solid box and has no walls; remove 'wall'" in text
    text = _error({**OBSTACLE, "slots": {"rows": 2, "cols": 1}})
    assert "fixtures[2].slots: {rows: 2, cols: 1} is not allowed: only a tray has slots; 'post' is an obstacle" in text
    text = _error({**OBSTACLE, "size": [0.05, 0.05]})
    assert "fixtures[2].size: [0.05, 0.05] is not allowed: must be 3 numbers [x, y, height] in m" in text
    assert "obstacle: full extents" in text
    assert "fixtures[2].size[2]: 0 is not allowed: must be > 0 and < 2 m" in _error({**OBSTACLE, "size": [0.1, 0.1, 0]})
    assert "fixtures[0].type: 'shelf' is not allowed: must be one of bin, tray, obstacle" in _error(f0={"type": "shelf"})


@pytest.mark.parametrize("value, shown", [("yes", "'yes'"), (1, "1"), (None, "null"), ("true", "'true'")])
def test_keep_out_must_be_true_or_false(value: Any, shown: str) -> None:
    text = _error(f1={"keep_out": value})
    assert f"fixtures[1].keep_out: {shown} is not allowed: must be true or false" in text
    assert len(text.splitlines()) == 2, text


def test_fixture_randomize_is_validated_like_an_object_region() -> None:
    spec = _tabletop_with(f1={"randomize": {"x": [-0.1, 0.1], "yaw": [-0.785, 0.785]}})
    r = spec.fixture("tray").randomize
    assert r is not None and r.x == (-0.1, 0.1) and r.y == (0.0, 0.0) and r.yaw == (-0.785, 0.785)
    assert "fixtures[1].randomize.x: [0.1, -0.1] is not allowed: must be [lo, hi] with lo <= hi (m)" in \
        _error(f1={"randomize": {"x": [0.1, -0.1]}})
    assert "fixtures[1].randomize.z: unknown field; allowed fields are: x, y, yaw" in \
        _error(f1={"randomize": {"z": [0, 1]}})
    assert "fixtures[1].randomize.yaw: 'lots' is not allowed: must be 2 numbers [lo, hi] in rad" in \
        _error(f1={"randomize": {"yaw": "lots"}})


@pytest.mark.parametrize("path", [WALL, MOVING], ids=["wall", "tabletop_moving"])
def test_example_cells_check_and_describe(path: Path) -> None:
    from typer.testing import CliRunner

    from robocell.cli.main import app

    out = CliRunner().invoke(app, ["cell", "check", str(path)])
    assert out.exit_code == 0, out.output
    assert "is a valid cell file" in out.output
    text = describe(load_cell_spec(path))
    assert "tray: tray" in text and "moved per seed by x [-0.1, 0.1] m, y [-0.1, 0.1] m, yaw [-0.785, 0.785] rad" in text
    if path == WALL:
        assert "wall: obstacle, solid 0.3 x 0.02 x 0.16 m box, grey, at [0.5, 0, 0] m; keep-out" in text


# ---- an obstacle in a running cell ----------------------------------------------------------
@pytest.fixture
def wall_cell() -> Iterator[Cell]:
    with Cell.load(WALL) as cell:
        yield cell


def test_obstacle_is_a_named_frame_but_never_a_place(wall_cell: Cell) -> None:
    from robocell.skills import SkillContext
    from robocell.skills.geometry import floor_z
    from robocell.testing import assert_in, where_is

    assert np.allclose(wall_cell.frame("wall").t, [0.5, 0.0, 0.0])
    assert np.allclose(wall_cell.frame("above_wall").t, [0.5, 0.0, 0.31])
    assert "wall" in wall_cell.frame_names()
    ctx = SkillContext.create(wall_cell, log=lambda s: None)
    start = wall_cell.object_pose("red_block").t
    with pytest.raises(SkillFailed, match="pick_and_place: 'wall' is an obstacle: nothing may be placed in or on it"):
        ctx.call("pick_and_place", object="red_block", target="wall")
    # refused before the pick: nothing moved, nothing in the hand
    assert np.allclose(wall_cell.object_pose("red_block").t, start, atol=1e-4) and ctx.holding is None
    with pytest.raises(ConfigError, match="'wall' is an obstacle .* no inner floor"):
        floor_z(wall_cell.spec.fixture("wall"))
    with pytest.raises(ConfigError, match="assert_in: 'wall' is an obstacle"):
        assert_in(wall_cell, "red_block", "wall")
    assert where_is(wall_cell, "red_block").startswith("on the table")


def test_language_never_grounds_a_place_in_an_obstacle() -> None:
    from robocell.skills.language.parse import NounPhrase
    from robocell.skills.language.resolve import Discourse, Resolver

    r = Resolver(load_cell_spec(WALL))
    with pytest.raises(LanguageError, match="'wall' is an obstacle: nothing may be put in or on it; the places are:"):
        r.place_for(NounPhrase("the wall", fixture="wall"), Discourse(), "put it on the wall", ["red_block"])
    assert r.place_for(NounPhrase("the tray", fixture="tray"), Discourse(), "put it in the tray",
                       ["red_block"]) == ("tray", "fixture")
