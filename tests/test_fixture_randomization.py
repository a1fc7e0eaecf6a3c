"""Fixtures moved per seed: deterministic, on their own stream, and the same for physics and the program."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from spatialmath import SE3

from robocell.core.cell import Cell
from robocell.cellfile.spec import CellSpec, load_cell_spec, parse_cell_spec
from robocell.cellfile.randomization import RandomizationSpec, place_fixtures
from robocell.sim.world import se3_from_pq
from robocell.eval.trial import EvalTarget, TrialJob, _load
from robocell.cellfile.yamlio import load_yaml

from tests.test_obstacles import MOVING, WALL


def _without_tray_randomize() -> CellSpec:
    data = load_yaml(MOVING.read_text())
    for fx in data["fixtures"]:
        fx.pop("randomize", None)
    return parse_cell_spec(data, "moving-without", MOVING.parent)


def _with_frame_on_tray() -> CellSpec:
    data = load_yaml(MOVING.read_text())
    data["frames"].append({"name": "over_tray", "parent": "tray", "pose": {"xyz": [0.02, 0.05, 0.2]}})
    return parse_cell_spec(data, "moving+frame", MOVING.parent)


def _body_pose(cell: Cell, name: str) -> SE3:
    world = cell.backend.world  # type: ignore[attr-defined]
    pos, orn = world.pb.getBasePositionAndOrientation(world.bodies[name], physicsClientId=world.client)
    return se3_from_pq(pos, orn)


def test_same_seed_same_fixture_pose_within_the_region() -> None:
    spec = load_cell_spec(MOVING)
    nominal = spec.fixture("tray").pose
    seen = set()
    for seed in range(30):
        a, b = place_fixtures(spec, seed).fixture("tray").pose, place_fixtures(spec, seed).fixture("tray").pose
        assert a == b
        dx, dy = a.xyz[0] - nominal.xyz[0], a.xyz[1] - nominal.xyz[1]
        assert -0.1 <= dx <= 0.1 and -0.1 <= dy <= 0.1 and a.xyz[2] == pytest.approx(nominal.xyz[2])
        assert -0.785 <= a.rpy[2] <= 0.785 and a.rpy[:2] == pytest.approx((0.0, 0.0), abs=1e-12)
        seen.add(round(a.xyz[0], 6))
    assert len(seen) == 30
    assert place_fixtures(spec, 3).fixture("bin") == spec.fixture("bin")  # no region: not moved
    assert place_fixtures(spec, 3).base_dir == spec.base_dir
    plain = load_cell_spec(WALL.parent / "tabletop.yaml")
    assert place_fixtures(plain, 3) is plain


def test_object_poses_of_a_seed_do_not_change_when_fixtures_move() -> None:
    from robocell.core.backends import create_backend

    for seed in (0, 7):
        moving = create_backend(place_fixtures(load_cell_spec(MOVING), seed), "sim", seed=seed)
        fixed = create_backend(_without_tray_randomize(), "sim", seed=seed)
        try:
            for name, pose in moving.initial_poses.items():  # type: ignore[attr-defined]
                assert np.array_equal(pose.A, fixed.initial_poses[name].A), name  # type: ignore[attr-defined]
        finally:
            moving.close()
            fixed.close()


def _check_program_sees_physics(cell: Cell, spec_seen: CellSpec) -> None:
    tray = spec_seen.fixture("tray")
    assert cell.spec.fixture("tray") == tray
    body = _body_pose(cell, "tray")  # the tray's body frame is on its floor's top: pose + wall
    assert np.allclose(body.A, (tray.pose.se3() * SE3.Trans(0, 0, tray.wall)).A, atol=1e-6)
    for name, T in tray.slot_poses().items():
        assert np.allclose(cell.frame(name).A, T.A, atol=1e-9)
        local = body.inv() * T  # a slot lies on the floor of the tray that physics built
        assert abs(local.t[2]) < 1e-6 and abs(local.t[0]) < 1e-6 and np.allclose(local.R, np.eye(3), atol=1e-6)
    assert np.allclose(cell.frame("tray").A, tray.pose.se3().A)


def test_cell_load_with_a_seed_gives_the_program_the_drawn_fixture_pose() -> None:
    spec = load_cell_spec(MOVING)
    with Cell.load(MOVING, seed=11) as cell:
        expected = place_fixtures(spec, 11)
        assert cell.spec.fixture("tray").pose != spec.fixture("tray").pose
        _check_program_sees_physics(cell, expected)
    with Cell.load(MOVING) as cell:  # no seed: as written
        assert cell.spec.fixture("tray").pose == spec.fixture("tray").pose
        _check_program_sees_physics(cell, spec)


def test_frames_parented_to_a_moved_fixture_follow_it() -> None:
    from robocell.core.backends import create_backend

    spec = place_fixtures(_with_frame_on_tray(), 4)
    cell = Cell(spec, create_backend(spec, "sim", seed=4))
    try:
        expected = spec.fixture("tray").pose.se3() * SE3.Trans(0.02, 0.05, 0.2)
        assert np.allclose(cell.frame("over_tray").A, expected.A)
        _check_program_sees_physics(cell, spec)
    finally:
        cell.close()


def test_eval_trials_move_fixtures_for_program_and_physics_but_keep_nominal_objects() -> None:
    job = TrialJob(EvalTarget.parse(["home"]), str(MOVING), 0, 5, randomization=RandomizationSpec(size=(1.2, 1.2)))
    cell, _ = _load(job)
    try:
        placed = place_fixtures(load_cell_spec(MOVING), 5)
        _check_program_sees_physics(cell, placed)
        # the program still believes the written object sizes; physics has the drawn ones
        assert cell.spec.object("red_block").size == (0.04, 0.04, 0.04)
        world = cell.backend.world  # type: ignore[attr-defined]
        shape = world.pb.getCollisionShapeData(world.bodies["red_block"], -1, physicsClientId=world.client)[0]
        assert shape[3][0] == pytest.approx(0.048)
    finally:
        cell.close()


def _layout_is_clear(path: Any, seeds: range) -> None:
    """Drawn objects and fixtures never overlap: nothing touches a fixture, nothing was pushed at settle."""
    for seed in seeds:
        with Cell.load(path, seed=seed) as cell:
            world = cell.backend.world  # type: ignore[attr-defined]
            pb, c = world.pb, world.client
            assert world.collisions == [], (seed, world.collisions)
            for obj in cell.objects:
                drawn = cell.backend.initial_poses[obj]  # type: ignore[attr-defined]
                assert np.linalg.norm(cell.object_pose(obj).t[:2] - drawn.t[:2]) < 1e-3, (seed, obj)
                for fx in cell.fixtures:
                    near = pb.getClosestPoints(world.bodies[obj], world.bodies[fx], 0.005, physicsClientId=c)
                    assert not near, (seed, obj, fx)


@pytest.mark.parametrize("path", [WALL, MOVING], ids=["wall", "tabletop_moving"])
def test_randomised_layouts_never_overlap(path: Any) -> None:
    _layout_is_clear(path, range(25))
