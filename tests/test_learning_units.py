"""Learning from demonstration, without a simulator: primitives, segmentation and its errors, the skill file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from spatialmath import SE3

from robocell.cellfile.spec import load_cell_spec
from robocell.recording.demonstration import Demonstration, Provenance
from robocell.errors import DemoError, SkillError
from robocell.skills.learning import LearnedSkill, learn
from robocell.skills.learning.primitive import Primitive
from robocell.skills.learning.segment import pq_of, segment_demo
from robocell.skills.registry import SkillRegistry

CELL = Path(__file__).resolve().parents[1] / "examples" / "cells" / "tabletop.yaml"
RATE = 120.0


@pytest.fixture(scope="module")
def spec():  # type: ignore[no-untyped-def]
    return load_cell_spec(CELL)


def _top_down(p: np.ndarray, yaw: float) -> np.ndarray:
    return np.asarray((SE3.Trans(p) * SE3.Rz(yaw) * SE3.Rx(math.pi)).A)


def _leg(a: np.ndarray, b: np.ndarray, lift: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    """A curved, uneven-speed, slightly noisy path from a to b (human-like, not a skill's straight line)."""
    u = np.linspace(0, 1, int(duration * RATE))
    s = 10 * u**3 - 15 * u**4 + 6 * u**5
    s = np.clip(s + 0.04 * np.sin(2 * np.pi * s) * np.sin(np.pi * s) ** 2, 0, 1)
    p = a + (b - a) * s[:, None]
    p[:, 2] += lift * np.sin(np.pi * s)
    p[:, 1] += 0.02 * np.sin(np.pi * s)
    noise = rng.normal(0, 0.0004, p.shape)
    kernel = np.ones(9) / 9
    p += np.column_stack([np.convolve(noise[:, j], kernel, "same") for j in range(3)]) * np.sin(np.pi * u)[:, None]
    return p


def synthetic_demo(spec, *, closes: int = 1, opens: bool = True, cell: str | None = None,  # type: ignore[no-untyped-def]
                   obj: str = "red_block", shift: tuple[float, float] = (0.0, 0.0), seed: int = 0) -> Demonstration:
    """A pick-and-place demonstration built from numbers (no arm): TCP path, gripper width, scene."""
    rng = np.random.default_rng(seed)
    objects = {o.name: o.pose.se3() for o in spec.objects}
    objects[obj] = SE3.Trans(*shift, 0) * objects[obj]
    slot = spec.fixture("tray").slot_poses()["tray.slot2"]
    start = np.array([0.30, 0.0, 0.45])
    grasp = objects[obj].t.copy()
    release = slot.t + np.array([0, 0, 0.026])
    legs = [_leg(start, grasp, 0.05, 3.0, rng), np.repeat(grasp[None], int(0.5 * RATE), 0),
            _leg(grasp, release, 0.15, 3.5, rng), np.repeat(release[None], int(0.5 * RATE), 0),
            _leg(release, release + [0, 0, 0.15], 0.0, 1.5, rng)]
    p = np.concatenate(legs)
    n = len(p)
    t = np.arange(n) / RATE
    width = np.full(n, 0.08)
    k0 = len(legs[0]) + 5
    k1 = k0 + len(legs[1]) + len(legs[2])
    for c in range(closes):  # fingers close onto the 4 cm block over 0.2 s
        a = k0 + c * 20
        width[a:] = np.maximum(np.linspace(0.08, 0.04, 24)[np.clip(np.arange(n - a), 0, 23)], 0.04)
        if c + 1 < closes:
            width[a + 10:] = 0.08
    if opens and closes:
        width[k1:] = np.minimum(0.04 + np.arange(n - k1) * 0.002, 0.08)
    grasped = (width < 0.06) & (width > 0.01)
    tcp = np.stack([_top_down(x, 0.0) for x in p])
    arm = spec.arms[0]
    prov = Provenance(cell=cell or spec.name, arm=arm.name, arm_model=str(arm.model),
                      joint_names=tuple(arm.arm_model().joint_names), date="2026-11-24T00:00:00+00:00",
                      source="synthetic", backend="none", robocell_version="0.1.0", rate=RATE)
    end = dict(objects)
    end[obj] = SE3.Trans(release - [0, 0, 0.026 - 0.02 - 0.01]) if opens else end[obj]
    return Demonstration(t=t, q=np.zeros((n, len(prov.joint_names))), tcp=tcp, gripper_width=width,
                         grasped=grasped, objects=objects, objects_end=end,
                         fixtures={f.name: f.pose.se3() for f in spec.fixtures}, provenance=prov)


def test_dmp_reproduces_a_curved_path_and_keeps_its_lift_when_start_and_goal_move() -> None:
    rng = np.random.default_rng(1)
    p = _leg(np.zeros(3), np.array([0.4, 0.1, 0.0]), 0.15, 3.0, rng)
    t = np.arange(len(p)) / RATE
    pq = np.array([pq_of(_top_down(x, 0.2)) for x in p])
    prim = Primitive.fit_dmp(t, pq)
    tt, y = prim.rollout(pq[0], pq[-1])
    phase = np.linspace(0, 1, len(t))
    yi = np.column_stack([np.interp(phase, tt / tt[-1], y[:, j]) for j in range(3)])
    assert np.sqrt(np.mean(np.sum((yi - p) ** 2, axis=1))) < 0.005
    goal = pq[-1].copy()
    goal[:2] += [0.08, -0.05]
    _, y2 = prim.rollout(pq[0], goal)
    np.testing.assert_allclose(y2[-1], goal, atol=1e-9)  # lands exactly on the new goal
    assert abs(y2[:, 2].max() - y[:, 2].max()) < 0.01  # and keeps the 15 cm lift


def test_promp_conditions_on_new_start_and_goal() -> None:
    rng = np.random.default_rng(2)
    ts, pqs = [], []
    for k in range(3):
        b = np.array([0.4, 0.1 * k - 0.1, 0.0])
        p = _leg(np.zeros(3), b, 0.15, 3.0 + 0.2 * k, rng)
        ts.append(np.arange(len(p)) / RATE)
        pqs.append(np.array([pq_of(_top_down(x, 0.0)) for x in p]))
    prim = Primitive.fit_promp(ts, pqs)
    goal = pqs[1][-1].copy()
    goal[:2] += [0.05, 0.03]
    t, y = prim.rollout(pqs[1][0], goal)
    np.testing.assert_allclose(y[0, :3], pqs[1][0, :3], atol=1e-9)
    np.testing.assert_allclose(y[-1, :3], goal[:3], atol=1e-9)
    assert 0.12 < y[:, 2].max() < 0.20
    assert np.allclose(np.linalg.norm(y[:, 3:], axis=1), 1.0)


def test_segmentation_finds_object_target_and_segments(spec) -> None:  # type: ignore[no-untyped-def]
    task = segment_demo(synthetic_demo(spec), spec)
    assert (task.object, task.target, task.target_kind) == ("red_block", "tray.slot2", "slot")
    assert [s.name for s in task.segments] == ["approach", "transport", "retreat"]
    np.testing.assert_allclose(task.grasp.t, [0, 0, 0], atol=1e-6)  # grasped at the block's centre
    for s in task.segments:  # the path frame starts at the segment's start
        np.testing.assert_allclose(s.pq[0, :3], 0, atol=1e-9)


def test_learning_writes_a_skill_file_that_registers_as_a_skill(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = learn([synthetic_demo(spec)], spec, name="tray_it", description="put the block into the tray",
                files=["synthetic.npz"])
    assert res.skill.method == "dmp"
    assert res.fit_rms < 0.005
    path = res.skill.save(tmp_path)
    back = LearnedSkill.load(path)
    assert back.provenance["demos"][0]["file"] == "synthetic.npz"
    assert back.provenance["fit_error_rms_m"] == pytest.approx(res.fit_rms)
    reg = SkillRegistry.default([tmp_path])
    s = reg.get("tray_it")
    assert [p.name for p in s.params] == ["object", "target"]
    assert [p.ref for p in s.params] == ["object", "target"]
    assert "put the block into the tray" in s.doc and "1 demonstration" in s.doc
    assert s.examples == ("put the block into the tray",)
    three = learn([synthetic_demo(spec, seed=k, shift=(0.02 * k, -0.01 * k)) for k in range(3)], spec,
                  name="tray_it3")
    assert three.skill.method == "promp" and three.fit_rms < 0.01


@pytest.mark.parametrize("kwargs, message", [
    ({"closes": 0}, "no gripper events"),
    ({"closes": 2}, "closes the gripper 2 times"),
    ({"opens": False}, "never opens it again"),
    ({"cell": "another_cell"}, "recorded on cell 'another_cell'"),
])
def test_bad_demonstrations_are_refused_clearly(spec, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DemoError, match=message):
        learn([synthetic_demo(spec, **kwargs)], spec, name="x")


def test_mixed_tasks_and_bad_options_are_refused(spec) -> None:  # type: ignore[no-untyped-def]
    red = synthetic_demo(spec)
    blue = synthetic_demo(spec, obj="blue_block")
    with pytest.raises(DemoError, match="different tasks.*red_block.*blue_block"):
        learn([red, blue], spec, name="x")
    with pytest.raises(SkillError, match="dmp learns from one"):
        learn([red, red], spec, name="x", method="dmp")
    with pytest.raises(SkillError, match="identifier"):
        learn([red], spec, name="not a name")


def test_corrupt_skill_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.skill.json"
    bad.write_text("{ not json")
    with pytest.raises(SkillError, match="cannot be read"):
        SkillRegistry.default([tmp_path])
