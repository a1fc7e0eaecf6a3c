"""The cell file: the examples load, and every kind of mistake gets a clear message.

A message is clear when it names the field path, the bad value and what is
allowed -- and never shows pydantic's own wording.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import yaml
from spatialmath import SE3

from robocell.cellfile.spec import CellSpec, PoseSpec, describe, load_cell_spec, parse_cell_spec
from robocell.errors import CellFileError, ConfigError

ROOT = Path(__file__).resolve().parents[1]
TABLETOP = ROOT / "examples" / "cells" / "tabletop.yaml"
KUKA = ROOT / "examples" / "cells" / "kuka.yaml"


def _base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(TABLETOP.read_text())
    return data


def _error_for(tmp_path: Path, change: Callable[[dict[str, Any]], Any]) -> str:
    """Write the tabletop cell with ``change`` applied and return the error message."""
    data = copy.deepcopy(_base())
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(CellFileError) as info:
        load_cell_spec(path)
    return _clean(str(info.value))


def _clean(msg: str) -> str:
    assert "Input should" not in msg and "pydantic" not in msg.lower() and "Traceback" not in msg, msg
    return msg


# ---- the examples ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", [TABLETOP, KUKA], ids=["tabletop", "kuka"])
def test_examples_load_and_describe(path: Path) -> None:
    spec = load_cell_spec(path)
    assert spec.version == 1
    assert spec.base_dir == path.parent
    text = describe(spec)
    for name in spec.names():
        assert name in text
    for obj in spec.objects:
        assert obj.name in text and obj.color_name in text
    assert "tray.slot1" in text and "panda_joint" not in text.splitlines()[0]
    model = spec.arms[0].arm_model()
    assert model.dof == 7 and len(model.home) == 7
    assert spec.arms[0].safety.speeds(model.dof).shape == (7,)
    assert {o.name for o in spec.objects} == {"red_block", "green_block", "blue_block"}
    assert [c.name for c in spec.cameras] == ["front", "top"]


def test_example_values() -> None:
    panda = load_cell_spec(TABLETOP)
    arm = panda.arm("panda")
    assert arm.model == "panda" and arm.gripper.force == 40.0
    assert arm.safety.joint_limits == {"panda_joint4": (-3.0, -0.1)}
    np.testing.assert_allclose(arm.safety.speeds(7), np.full(7, 1.5))
    np.testing.assert_allclose(arm.safety.accels(7), np.full(7, 6.0))
    assert arm.safety.workspace.min == (-0.2, -0.6, -0.005)
    red = panda.object("red_block")
    assert red.color_name == "red" and red.rgba[3] == 1.0 and red.half_height == pytest.approx(0.02)
    assert red.randomize is not None and red.randomize.yaw == (-0.5, 0.5)
    assert panda.fixture("bin").color_name == "grey"
    kuka = load_cell_spec(KUKA)
    iiwa = kuka.arm("iiwa")
    assert iiwa.model == "kuka_iiwa" and iiwa.safety.joint_limits == {}
    np.testing.assert_allclose(iiwa.safety.speeds(7), np.full(7, 1.2))
    np.testing.assert_allclose(iiwa.safety.accels(7), np.full(7, 5.0))
    with pytest.raises(ConfigError, match="the cell's objects are: red_block, green_block, blue_block"):
        kuka.object("purple_block")


def test_defaults_and_overrides() -> None:
    data = {"version": 1, "name": "bare", "arms": [{"name": "arm", "model": "panda", "home": [0.1] * 7}]}
    spec = parse_cell_spec(data)
    assert spec.table is not None and spec.table.size == (1.2, 1.0, 0.05) and spec.table.color_name == "wood"
    assert [c.name for c in spec.cameras] == ["front"]  # a camera looking at the table
    arm = spec.arms[0]
    assert arm.arm_model().home == (0.1,) * 7
    assert arm.safety.workspace.min == (-1.0, -1.0, -0.01) and arm.safety.max_tcp_speed == 0.5
    assert spec.objects == () and spec.base_dir is None
    no_table = parse_cell_spec({**data, "table": None})
    assert no_table.table is None
    per_joint = copy.deepcopy(data)
    per_joint["arms"][0]["safety"] = {"max_joint_speed": [1, 2, 3, 4, 5, 6, 7]}
    np.testing.assert_allclose(parse_cell_spec(per_joint).arms[0].safety.speeds(7), np.arange(1, 8))


def test_colour_by_rgb_gets_nearest_name() -> None:
    data = copy.deepcopy(_base())
    data["objects"][0]["color"] = [0.2, 0.3, 0.8]
    data["objects"][1]["color"] = "Gray"
    spec = parse_cell_spec(data)
    assert spec.objects[0].color_name == "blue" and spec.objects[0].rgba == (0.2, 0.3, 0.8, 1.0)
    assert spec.objects[1].color_name == "grey"


def test_custom_arm(tmp_path: Path) -> None:
    (tmp_path / "my_arm.urdf").write_text("<robot name='x'/>")
    arm = {"name": "mine", "urdf": "my_arm.urdf", "base_link": "base", "tcp_link": "tool",
           "joints": ["j1", "j2"], "finger_joints": ["f1"], "finger_travel": 0.03, "home": [0.0, 0.5]}
    spec = parse_cell_spec({"version": 1, "name": "c", "arms": [arm]}, base_dir=tmp_path)
    model = spec.arms[0].arm_model()
    assert Path(model.source_urdf) == (tmp_path / "my_arm.urdf").resolve()
    assert model.joint_names == ("j1", "j2") and model.dof == 2 and model.home == (0.0, 0.5)
    partial = {k: v for k, v in arm.items() if k not in ("tcp_link", "joints")}
    with pytest.raises(CellFileError) as info:
        parse_cell_spec({"version": 1, "name": "c", "arms": [partial]}, base_dir=tmp_path)
    msg = _clean(str(info.value))
    assert "arms[0]: a custom arm (with 'urdf') also needs: tcp_link, joints" in msg


# ---- conventions ---------------------------------------------------------------------------
def test_pose_rpy_matches_urdf_convention() -> None:
    import pybullet as pb

    rng = np.random.default_rng(3)
    for _ in range(20):
        rpy = tuple(float(a) for a in rng.uniform(-math.pi, math.pi, 3))
        xyz = tuple(float(a) for a in rng.uniform(-1, 1, 3))
        T = PoseSpec(xyz=xyz, rpy=rpy).se3()
        R_urdf = np.array(pb.getMatrixFromQuaternion(pb.getQuaternionFromEuler(rpy))).reshape(3, 3)
        np.testing.assert_allclose(T.R, R_urdf, atol=1e-12)
        np.testing.assert_allclose(T.t, xyz)
        np.testing.assert_allclose(PoseSpec.from_se3(T).se3().A, T.A, atol=1e-12)


def test_tray_slots_and_contains() -> None:
    spec = load_cell_spec(TABLETOP)
    tray = spec.fixture("tray")
    slots = tray.slot_poses()
    assert list(slots) == ["tray.slot1", "tray.slot2", "tray.slot3"]
    ys = [float(T.t[1]) for T in slots.values()]
    np.testing.assert_allclose(ys, [0.03, 0.12, 0.21])  # 0.09 m pitch along the tray's y, row 1 at -y
    for T in slots.values():
        assert isinstance(T, SE3)
        assert float(T.t[0]) == pytest.approx(0.66)
        assert float(T.t[2]) == pytest.approx(tray.wall)  # on the inner floor
        assert tray.contains(T.t)
        assert tray.contains(T.t + np.array([0.0, 0.0, 0.02]), margin=0.02)
        assert not spec.fixture("bin").contains(T.t)
    assert not tray.contains(np.array([0.66, 0.12 + 0.15, 0.02]))  # past the end wall
    assert not tray.contains(np.array([0.66, 0.12, 0.2]))  # far above
    assert not tray.contains(np.array([0.66 + 0.04, 0.12, 0.02]), margin=0.01)  # inside, but not by the margin
    assert spec.fixture("bin").slot_poses() == {}


def test_contains_follows_a_rotated_fixture() -> None:
    data = copy.deepcopy(_base())
    data["fixtures"][1]["pose"] = {"xyz": [0.5, 0.0, 0.0], "rpy": [0.0, 0.0, math.pi / 2]}
    tray = parse_cell_spec(data).fixture("tray")
    slots = tray.slot_poses()
    np.testing.assert_allclose(slots["tray.slot1"].t[:2], [0.59, 0.0], atol=1e-9)  # tray y -> world -x
    assert tray.contains(np.array([0.6, 0.0, 0.03]))
    assert not tray.contains(np.array([0.5, 0.1, 0.03]))  # 0.1 m along the tray's short side


# ---- bad input ------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CellFileError, match=r"nope\.yaml does not exist"):
        load_cell_spec(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("version: 1\nname: x\narms:\n  - name: a\n    model: panda\n   base: {xyz: [0, 0, 0]}\n")
    with pytest.raises(CellFileError) as info:
        load_cell_spec(path)
    msg = str(info.value)
    assert str(path) in msg and "not valid YAML" in msg and "line 6" in msg and "column" in msg


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("version: 1\nname: x\nname: y\n")
    with pytest.raises(CellFileError, match=r"line 3, column 1: duplicate key 'name' \(first given at line 2\)"):
        load_cell_spec(path)


@pytest.mark.parametrize(
    "text, found", [("- a\n- b\n", "found ['a', 'b'] (list)"), ("", "empty"), ("42\n", "found 42 (int)")]
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    path = tmp_path / "top.yaml"
    path.write_text(text)
    with pytest.raises(CellFileError) as info:
        load_cell_spec(path)
    msg = _clean(str(info.value))
    assert "top level must be a mapping" in msg and found in msg


def test_nan_in_a_pose(tmp_path: Path) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text(TABLETOP.read_text().replace("[0.60, -0.10, 0.02]", "[0.60, .nan, 0.02]"))
    with pytest.raises(CellFileError) as info:
        load_cell_spec(path)
    msg = _clean(str(info.value))
    assert f"cell file {path} is invalid:\n" in msg
    assert "objects[1].pose.xyz[1]: nan is not allowed: must be a finite number in m" in msg


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets data[a][b]... = value for a dotted path with integer indices."""

    def change(data: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = data
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return change


BAD_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], list[str]]] = [
    ("wrong version", _set("version", 2), ["version: 2 is not allowed: must be 1"]),
    ("unknown field", _set("objects.0.colour", "red"),
     [("objects[0].colour: unknown field; allowed fields are: color, friction, mass, mesh, name, pose, "
      "randomize, shape, size")]),
    ("negative mass", _set("objects.1.mass", -0.1), ["objects[1].mass: -0.1 is not allowed: must be > 0", "kg"]),
    ("box size length", _set("objects.0.size", [0.04, 0.04]),
     ["objects[0].size: [0.04, 0.04] is not allowed: a box needs 3 numbers [x, y, z]"]),
    ("unknown model", _set("arms.0.model", "ur5"),
     ["arms[0].model: 'ur5' is not allowed", "built-in models are: kuka_iiwa, panda"]),
    ("duplicate names", _set("frames.0.name", "bin"),
     ["frames[0].name: 'bin' is not allowed: fixtures[0] already has this name", "must be unique"]),
    ("unknown parent", _set("frames.1.parent", "shelf"),
     ["frames[1].parent: 'shelf' is not allowed: unknown parent", "world, panda, red_block", "bin, tray"]),
    ("unknown joint", _set("arms.0.safety.joint_limits.panda_joint9", [0.0, 1.0]),
     [("arms[0].safety.joint_limits: unknown joint 'panda_joint9'; the arm's joints are panda_joint1, "
      "panda_joint2, panda_joint3, panda_joint4, panda_joint5, panda_joint6, panda_joint7")]),
    ("joint limit order", _set("arms.0.safety.joint_limits.panda_joint4", [0.0, -1.0]),
     ["arms[0].safety.joint_limits.panda_joint4: [0.0, -1.0] is not allowed: must be [lo, hi] with lo < hi"]),
    ("home length", _set("arms.0.home", [0.0, 0.1]),
     ["arms[0].home: [0.0, 0.1] is not allowed: has 2 values but the arm has 7 joints", "give 7 angles in rad"]),
    ("workspace min >= max", _set("arms.0.safety.workspace.min", [-0.2, 0.6, -0.005]),
     ["arms[0].safety.workspace: min [-0.2, 0.6, -0.005] is not allowed with max [0.9, 0.6, 0.9]",
      "min must be < max on every axis (fails on y"]),
    ("slots on a bin", _set("fixtures.0.slots", {"rows": 1, "cols": 3}),
     ["fixtures[0].slots: {rows: 1, cols: 3} is not allowed: only a tray has slots; 'bin' is a bin"]),
    ("mesh without file", _set("objects.2.shape", "mesh"),
     ["objects[2].mesh: missing: a mesh object needs 'mesh'"]),
    ("colour out of range", _set("objects.0.color", [1.2, 0.0, 0.0]),
     ["objects[0].color: [1.2, 0.0, 0.0] is not allowed", "[r, g, b] / [r, g, b, a] with each in 0..1"]),
    ("unknown colour name", _set("fixtures.1.color", "teal"),
     ["fixtures[1].color: 'teal' is not allowed: unknown colour", "red, green, blue"]),
    ("unknown shape", _set("objects.0.shape", "sphere"),
     ["objects[0].shape: 'sphere' is not allowed: must be one of box, cylinder, mesh"]),
    ("text for a number", _set("arms.0.safety.max_tcp_speed", "fast"),
     ["arms[0].safety.max_tcp_speed: 'fast' is not allowed: must be a finite number > 0 m/s"]),
    ("per-joint speed count", _set("arms.0.safety.max_joint_speed", [1.0, 1.0]),
     ["arms[0].safety.max_joint_speed: [1.0, 1.0] is not allowed: has 2 values", "or 7 (one per joint"]),
    ("gripper force", _set("arms.0.gripper.force", 500),
     ["arms[0].gripper.force: 500 is not allowed: must be > 0 and <= 200 N"]),
    ("camera fov", _set("cameras.0.fov", 180), ["cameras[0].fov: 180 is not allowed: must be > 0 and < 180 deg"]),
    ("randomize order", _set("objects.0.randomize.x", [0.03, -0.03]),
     ["objects[0].randomize.x: [0.03, -0.03] is not allowed: must be [lo, hi] with lo <= hi (m)"]),
    ("bad identifier", _set("objects.0.name", "Red Block"),
     ["objects[0].name: 'Red Block' is not allowed: a name must be lower-case letters"]),
    ("missing pose", lambda d: d["objects"][0].pop("pose"), ["objects[0].pose: missing required field"]),
    ("no arms", _set("arms", []), ["arms: [] is not allowed: a cell needs at least one arm"]),
    ("mesh file missing", lambda d: d["objects"][0].update(shape="mesh", mesh="cube.obj", size=[1, 1, 1]),
     ["objects[0].mesh: 'cube.obj' is not allowed: the mesh file", "cube.obj does not exist"]),
    ("built-in arm with custom fields", _set("arms.0.tcp_link", "tool"),
     ["arms[0].tcp_link: 'tool' is not allowed: only a custom arm (with 'urdf') takes 'tcp_link'"]),
]


@pytest.mark.parametrize("change, expected", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_input_names_path_value_and_rule(tmp_path: Path, change: Callable[[dict[str, Any]], Any],
                                             expected: list[str]) -> None:
    msg = _error_for(tmp_path, change)
    assert msg.startswith(f"cell file {tmp_path / 'bad.yaml'} is invalid:\n  ")
    for part in expected:
        assert part in msg, f"{part!r} not in:\n{msg}"
    assert len(msg.splitlines()) == 2, msg  # exactly one problem reported


def test_several_errors_are_listed_together(tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["objects"][0]["mass"] = 0
        d["objects"][1]["colour"] = "red"
        d["fixtures"][1]["type"] = "shelf"
        d["frames"][1]["parent"] = "nowhere"
        d["arms"][0]["safety"]["max_tcp_speed"] = -1

    msg = _error_for(tmp_path, change)
    lines = msg.splitlines()
    assert lines[0] == f"cell file {tmp_path / 'bad.yaml'} is invalid:"
    body = "\n".join(lines[1:])
    for part in ("arms[0].safety.max_tcp_speed: -1 is not allowed", "objects[0].mass: 0 is not allowed",
                 "objects[1].colour: unknown field", "fixtures[1].type: 'shelf' is not allowed",
                 "frames[1].parent: 'nowhere' is not allowed"):
        assert part in body
    assert len(lines) == 6 and all(line.startswith("  ") for line in lines[1:])


def test_parse_cell_spec_rejects_non_mapping() -> None:
    with pytest.raises(CellFileError, match="cell file <cell> is invalid: the top level must be a mapping"):
        parse_cell_spec([1, 2])  # type: ignore[arg-type]


def test_spec_is_frozen() -> None:
    spec = load_cell_spec(TABLETOP)
    assert isinstance(spec, CellSpec)
    with pytest.raises(pydantic.ValidationError):  # frozen: the static description never changes
        spec.objects[0].mass = 1.0  # type: ignore[misc]
