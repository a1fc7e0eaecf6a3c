"""Randomisation beyond poses: validated ranges, per-trial draws, physics applied, sensor noise, link faults."""

from __future__ import annotations

import numpy as np
import pytest

from robocell.cellfile.spec import load_cell_spec, parse_cell_spec
from robocell.errors import CellFileError
from robocell.cellfile.randomization import (RandomizationSpec, TrialConditions, backend_options, draw, merge,
                                    parse_overrides, physical_spec)
from robocell.eval.trial import EvalTarget, TrialJob, _load
from robocell.cellfile.yamlio import load_yaml

from tests.conftest import TABLETOP

WIDE = RandomizationSpec(friction=(0.5, 1.5), mass=(0.5, 2.0), size=(0.8, 1.2))


def _cell_with(section: str):
    data = load_yaml(TABLETOP.read_text())
    data["randomization"] = load_yaml(section)
    return parse_cell_spec(data, "tabletop+randomization", TABLETOP.parent)


def test_cell_file_section_errors_name_field_value_and_limit() -> None:
    with pytest.raises(CellFileError) as exc:
        _cell_with("{mass: [0, 2], sensor_noise: {object_position: -1, colour: 2}, remote: {state_drop: 1.0}}")
    text = str(exc.value)
    assert "randomization.mass[0]: 0 is not allowed: must be > 0 and <= 10 (scale factor)" in text
    assert "randomization.sensor_noise.object_position: -1 is not allowed: must be >= 0 and <= 0.05 m" in text
    assert "randomization.sensor_noise.colour: unknown field" in text
    assert "randomization.remote.state_drop: 1.0 is not allowed: must be >= 0 and < 1 (probability)" in text
    with pytest.raises(CellFileError, match=r"randomization.objects\[1\]: 'unicorn' is not allowed: not an object"):
        _cell_with("{objects: [red_block, unicorn]}")
    with pytest.raises(CellFileError, match=r"randomization.friction: \[1.3, 0.7\] is not allowed: must be \[lo, hi\]"):
        _cell_with("{friction: [1.3, 0.7]}")


def test_command_line_overrides_merge_onto_the_file() -> None:
    base = _cell_with("{friction: [0.9, 1.1], sensor_noise: {object_yaw: 0.01}}").randomization
    merged = merge(base, parse_overrides(["mass=0.5:2", "sensor_noise.joint_position=0.001", "remote.latency=0.02"]))
    assert merged.friction == (0.9, 1.1) and merged.mass == (0.5, 2.0)
    assert merged.sensor_noise.object_yaw == 0.01 and merged.sensor_noise.joint_position == 0.001
    assert merged.remote.latency == (0.02, 0.02)


def test_draws_depend_on_the_seed_alone() -> None:
    spec = load_cell_spec(TABLETOP)
    a, b, c = draw(WIDE, spec, 11), draw(WIDE, spec, 11), draw(WIDE, spec, 12)
    assert a == b and a != c
    for d in a.objects.values():
        assert 0.5 <= d.friction <= 1.5 and 0.5 <= d.mass <= 2.0 and 0.8 <= d.size <= 1.2
    only_red = draw(RandomizationSpec(friction=(0.5, 1.5), objects=("red_block",)), spec, 11)
    assert list(only_red.objects) == ["red_block"]


def test_physics_gets_the_drawn_values_and_poses_keep_their_stream() -> None:
    target = EvalTarget.parse(["home"])
    plain, _ = _load(TrialJob(target, str(TABLETOP), 0, 5))
    varied, summary = _load(TrialJob(target, str(TABLETOP), 0, 5, randomization=WIDE))
    try:
        d = draw(WIDE, load_cell_spec(TABLETOP), 5).objects["red_block"]
        assert summary["objects"]["red_block"]["mass"] == d.mass
        world = varied.backend.world
        pb, body = world.pb, world.bodies["red_block"]
        mass, friction = pb.getDynamicsInfo(body, -1, physicsClientId=world.client)[:2][0], \
            pb.getDynamicsInfo(body, -1, physicsClientId=world.client)[1]
        assert mass == pytest.approx(0.08 * d.mass) and friction == pytest.approx(1.0 * d.friction)
        lo, hi = pb.getAABB(body, -1, physicsClientId=world.client)
        assert hi[2] - lo[2] == pytest.approx(0.04 * d.size, abs=2e-3)
        # the program still sees the nominal cell file
        assert varied.spec.object("red_block").size == (0.04, 0.04, 0.04)
        # the x, y pose of a seed does not change when randomisation is added
        assert np.allclose(varied.object_pose("red_block").t[:2], plain.object_pose("red_block").t[:2], atol=1e-3)
    finally:
        plain.close()
        varied.close()


def test_sensor_noise_perturbs_what_the_program_reads() -> None:
    rnd = merge(None, parse_overrides(["sensor_noise.object_position=0.004", "sensor_noise.joint_position=0.002"]))
    cell, _ = _load(TrialJob(EvalTarget.parse(["home"]), str(TABLETOP), 0, 9, randomization=rnd))
    try:
        true = cell.backend._backend.object_pose("red_block").t
        reads = np.array([cell.object_pose("red_block").t for _ in range(400)])
        assert np.allclose(reads.mean(axis=0), true, atol=0.001)
        assert np.std(reads[:, 0]) == pytest.approx(0.004, rel=0.2)
        q_true = cell.arm()._arm.state().q
        qs = np.array([cell.arm().state().q for _ in range(200)])
        assert np.std(qs - q_true) == pytest.approx(0.002, rel=0.2)
    finally:
        cell.close()


def test_link_faults_go_to_remote_backends_only() -> None:
    cond = TrialConditions(latency=0.015, state_drop=0.1)
    assert backend_options("tcp://arm:5555", cond) == {"latency": 0.015, "state_drop": 0.1}
    assert backend_options("sim", cond) == {}
    spec = load_cell_spec(TABLETOP)
    rnd = merge(None, parse_overrides(["remote.latency=0.01:0.03", "remote.state_drop=0.2"]))
    drawn = draw(rnd, spec, 3)
    assert 0.01 <= drawn.latency <= 0.03 and drawn.state_drop == 0.2
    assert physical_spec(spec, TrialConditions()) is spec


# ---- a remote backend receives the drawn link faults --------------------------------------------
SEEN: list[dict] = []


def fake_remote_create(spec, address: str, **options):
    """Stands in for robocell.hardware.remote:create: a simulated cell that records its options."""
    from robocell.sim.backend import SimBackend

    SEEN.append({"address": address, **options})
    return SimBackend(spec)


def test_remote_backend_gets_latency_and_state_drop_per_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    from robocell.core import backends
    from robocell.eval.trial import execute

    monkeypatch.setitem(backends.BUILTIN_BACKENDS, "fake", f"{__name__}:fake_remote_create")
    SEEN.clear()
    rnd = merge(None, parse_overrides(["remote.latency=0.01:0.03", "remote.state_drop=0.2"]))
    results = [execute(TrialJob(EvalTarget.parse(["home"]), str(TABLETOP), k, seed, backend="fake://rig",
                                randomization=rnd)) for k, seed in enumerate((21, 22))]
    assert all(r.success for r in results), results
    assert [o["address"] for o in SEEN] == ["fake://rig"] * 2
    assert all(set(o) == {"address", "latency", "state_drop"} for o in SEEN)  # no seed, gui or record
    assert SEEN[0]["latency"] != SEEN[1]["latency"] and all(0.01 <= o["latency"] <= 0.03 for o in SEEN)
    assert [o["latency"] for o in SEEN] == [draw(rnd, load_cell_spec(TABLETOP), s).latency for s in (21, 22)]
    assert results[0].conditions["state_drop"] == 0.2
