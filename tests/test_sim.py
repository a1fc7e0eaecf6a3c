"""Simulator specifics: determinism, randomisation, blocked motions, pacing, pictures."""

from __future__ import annotations

import time

import numpy as np
import pytest
from spatialmath import SE3

from robocell.core.cell import Cell
from robocell.errors import ConfigError, TrackingError
from robocell.skills import SkillContext

from tests.conftest import TABLETOP


def _episode(seed: int) -> dict[str, np.ndarray]:
    with Cell.load(TABLETOP, seed=seed) as cell:
        SkillContext.create(cell).call("pick_and_place", object="green_block", target="tray.slot2")
        return {o: cell.object_pose(o).A.copy() for o in cell.objects}


def test_same_seed_same_world() -> None:
    a, b = _episode(11), _episode(11)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])  # bit-for-bit


def test_randomisation_stays_in_declared_regions() -> None:
    spec_cell = Cell.load(TABLETOP)
    nominal = {o.name: (o.pose.se3(), o.randomize) for o in spec_cell.spec.objects}
    spec_cell.close()
    moved = set()
    for seed in range(5):
        with Cell.load(TABLETOP, seed=seed) as cell:
            for name, (pose, region) in nominal.items():
                p = cell.object_pose(name)
                d = p.t - pose.t
                assert region.x[0] - 0.003 <= d[0] <= region.x[1] + 0.003
                assert region.y[0] - 0.003 <= d[1] <= region.y[1] + 0.003
                assert abs(p.t[2] - pose.t[2]) < 0.003  # resting on the table
                if np.linalg.norm(d[:2]) > 0.002:
                    moved.add(name)
    assert moved == set(nominal)


def test_blocked_motion_raises_tracking_error(tabletop: Cell) -> None:
    world = tabletop.backend.world  # type: ignore[attr-defined]
    pb = world.pb
    arm = tabletop.arm()
    start = arm.state().tcp
    # a heavy static wall right below the hand: the arm cannot get through it
    wall = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[0.15, 0.15, 0.01], physicsClientId=world.client)
    pb.createMultiBody(0, wall, basePosition=list(start.t - [0, 0, 0.08]), physicsClientId=world.client)
    with pytest.raises(TrackingError, match="mm"):
        arm.move_pose(SE3.Trans(0, 0, -0.2) * start, linear=True)


def test_realtime_pacing_on_request() -> None:
    with Cell.load(TABLETOP, realtime=True) as cell:
        t0 = time.perf_counter()
        cell.wait(0.5)
        assert time.perf_counter() - t0 >= 0.45  # paced: never faster than the clock


def test_render_named_cameras_and_unknown_camera(tabletop: Cell) -> None:
    front = tabletop.render("front", size=(160, 120))
    top = tabletop.render("top", size=(160, 120))
    assert front.shape == (120, 160, 3) and front.std() > 10
    assert not np.array_equal(front, top)
    with pytest.raises(ConfigError, match="unknown camera 'side'; the cell's cameras are: front, top"):
        tabletop.render("side")


def test_frames_resolve(tabletop: Cell) -> None:
    assert np.allclose(tabletop.frame("world").A, np.eye(4))
    assert np.allclose(tabletop.frame("above_bin").t, [0.45, 0.30, 0.30])
    assert np.allclose(tabletop.frame("tray.slot1").t[:2], [0.66, 0.03])
    with pytest.raises(ConfigError, match="unknown frame 'nowhere'.*above_bin"):
        tabletop.frame("nowhere")


def test_cylinder_and_mesh_objects(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pybullet_data
    import yaml

    data = yaml.safe_load(TABLETOP.read_text())
    mesh = f"{pybullet_data.getDataPath()}/cube.obj"  # a 1 m cube mesh, scaled to 4 cm
    data["objects"] = [
        {"name": "can", "shape": "cylinder", "size": [0.02, 0.06], "mass": 0.1, "color": "yellow",
         "pose": {"xyz": [0.45, -0.25, 0.03]}},
        {"name": "cube_mesh", "shape": "mesh", "mesh": mesh, "size": [0.04, 0.04, 0.04], "mass": 0.08,
         "color": "orange", "pose": {"xyz": [0.60, -0.10, 0.02]}},
    ]
    path = tmp_path / "shapes.yaml"
    path.write_text(yaml.safe_dump(data))
    with Cell.load(path) as cell:
        assert abs(cell.object_pose("can").t[2] - 0.03) < 0.003  # resting upright on the table
        assert abs(cell.object_pose("cube_mesh").t[2] - 0.02) < 0.003
        ctx = SkillContext.create(cell)
        ctx.call("pick_and_place", object="can", target="bin")
        assert cell.spec.fixture("bin").contains(cell.object_pose("can").t)
        ctx.call("pick_and_place", object="cube_mesh", target="tray.slot1")
        assert np.linalg.norm(cell.object_pose("cube_mesh").t[:2] - cell.frame("tray.slot1").t[:2]) < 0.03
