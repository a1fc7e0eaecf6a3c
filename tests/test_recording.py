"""Recording in simulation: the scripted demonstration, the sampler, errors, the CLI and teleoperation."""

from __future__ import annotations

import math
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robocell.core.cell import Cell
from robocell.cli.main import main
from robocell.recording.demo_scripts import DemoLog, human_like_pick_place, slot_release
from robocell.recording.demonstration import Demonstration
from robocell.errors import BackendError, ConfigError, DemoError
from robocell.recording.recorder import SampleBuffer, record

from tests.conftest import ROOT, TABLETOP

DEMO_SCRIPT = ROOT / "examples" / "demos" / "pick_place_demo.py"


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[Cell, Demonstration, DemoLog, float]]:
    """The human-like pick-and-place recorded once at 100 Hz (simulated time, deterministic)."""
    with Cell.load(TABLETOP) as cell:
        t_start = cell.backend.world.time  # type: ignore[attr-defined]
        with record(cell, rate=100.0, source="script:test", cell_file=TABLETOP) as rec:
            log = human_like_pick_place(cell, "red_block", slot_release(cell, "red_block", "tray.slot2"),
                                        rng=np.random.default_rng(7))
        yield cell, rec.demonstration(), log, t_start


def test_rate_and_no_lost_samples(recorded: Any) -> None:
    _, demo, _, _ = recorded
    assert demo.achieved_rate >= 100.0
    assert demo.achieved_rate == pytest.approx(120.0)  # every 2 steps of 240 Hz
    assert demo.lost_samples() == 0 and demo.lost_samples(120.0) == 0
    assert demo.duration > 5.0


def test_events_close_then_open_when_commanded(recorded: Any) -> None:
    _, demo, log, t_start = recorded
    assert [e.kind for e in demo.events] == ["close", "open"]
    period = 1.0 / 120.0
    # an event is dated at the last sample before the fingers moved: at most a sample before the command
    assert demo.events[0].t == pytest.approx(log.close_t[0] - t_start, abs=2 * period)
    assert demo.events[1].t == pytest.approx(log.open_t[0] - t_start, abs=2 * period)
    close, open_ = demo.events[0].index, demo.events[1].index
    assert demo.grasped[close + 30] and not demo.grasped[open_ + 60]


def test_tcp_is_the_forward_kinematics_of_q(recorded: Any) -> None:
    cell, demo, _, _ = recorded
    arm = cell.arm()
    fk = np.array([(arm.base * arm.kinematics.fk(q)).A for q in demo.q[::10]])
    assert np.max(np.abs(fk - demo.tcp[::10])) < 1e-5


def test_objects_at_start_and_end(recorded: Any) -> None:
    cell, demo, _, _ = recorded
    start = demo.objects["red_block"].t
    assert np.allclose(start[:2], [0.45, -0.25], atol=0.002)
    end = demo.objects_end["red_block"].t
    slot = cell.frame("tray.slot2").t
    assert np.linalg.norm(end[:2] - slot[:2]) < 0.02 and end[2] < 0.05
    assert np.allclose(demo.objects_end["green_block"].t, demo.objects["green_block"].t, atol=1e-3)
    assert set(demo.fixtures) == {"bin", "tray"}


def test_provenance(recorded: Any) -> None:
    _, demo, _, _ = recorded
    p = demo.provenance
    assert (p.cell, p.arm, p.arm_model, p.backend, p.rate, p.source) == (
        "tabletop", "panda", "panda", "sim", 100.0, "script:test")
    assert p.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert len(p.cell_sha256) == 64 and p.cell_file == str(TABLETOP)


def test_save_load_round_trip_bit_exact(recorded: Any, tmp_path: Path) -> None:
    _, demo, _, _ = recorded
    back = Demonstration.load(demo.save(tmp_path / "demo.npz"))
    for name in ("t", "q", "tcp", "gripper_width", "grasped"):
        assert np.array_equal(getattr(back, name), getattr(demo, name)), name
    assert back.provenance == demo.provenance and back.events == demo.events
    for n, pose in demo.objects_end.items():
        assert np.array_equal(back.objects_end[n].A, pose.A)


def _short_recording() -> Demonstration:
    with Cell.load(TABLETOP) as cell, record(cell, rate=100.0) as rec:
        arm = cell.arm()
        q = arm.state().q + np.array([0.3, 0, 0, 0, 0, 0, 0])
        arm.move_joints(q)
        cell.gripper().close()
    return rec.demonstration()


def test_sim_recording_is_deterministic() -> None:
    a, b = _short_recording(), _short_recording()
    assert np.array_equal(a.t, b.t) and np.array_equal(a.q, b.q) and np.array_equal(a.gripper_width, b.gripper_width)


@pytest.mark.parametrize("rate,needle", [
    (0.0, r"must be in \(0, 1000\]"), (-5.0, r"must be in \(0, 1000\]"), (1001.0, r"must be in \(0, 1000\]"),
    (math.nan, r"must be in \(0, 1000\]"), ("fast", "not a number"),
])
def test_bad_rate(tabletop: Cell, rate: Any, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        record(tabletop, rate=rate)


def test_sim_rate_above_physics_rate(tabletop: Cell) -> None:
    with pytest.raises(ConfigError, match="steps at 240 Hz"), record(tabletop, rate=500.0):
        pass


def test_unknown_arm(tabletop: Cell) -> None:
    with pytest.raises(ConfigError, match="unknown arm 'ur10'.*panda"):
        record(tabletop, arm="ur10")


def test_recording_nothing(tabletop: Cell) -> None:
    with record(tabletop) as rec:
        pass  # simulated time never passed
    assert rec.n_samples == 1
    with pytest.raises(DemoError, match="1 samples; a demonstration needs at least 10"):
        rec.demonstration()


def test_backend_without_hook(tabletop: Cell) -> None:
    class Bare:
        arms = tabletop.backend.arms

    cell = Cell(tabletop.spec, Bare(), "bare://")  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="cannot record demonstrations"), record(cell):
        pass


def test_buffer_grows_in_chunks() -> None:
    buf = SampleBuffer(2, chunk=4)
    for i in range(10):
        buf.append(i * 0.01, [i, -i], np.eye(4) * (i + 1), 0.08 - i * 0.001, i % 2 == 0)
    t, q, tcp, w, g = buf.arrays()
    assert len(buf) == 10 and np.allclose(t, np.arange(10) * 0.01)
    assert np.array_equal(q[:, 0], np.arange(10)) and tcp.shape == (10, 4, 4) and tcp[9, 0, 0] == 10
    assert list(g) == [i % 2 == 0 for i in range(10)] and w[3] == pytest.approx(0.077)


def test_example_demo_script_puts_red_block_in_slot2() -> None:
    demonstrate = runpy.run_path(str(DEMO_SCRIPT))["demonstrate"]
    with Cell.load(TABLETOP, seed=3) as cell:  # a randomised start: the script reads the block's pose
        demonstrate(cell)
        end = cell.object_pose("red_block").t
        assert np.linalg.norm(end[:2] - cell.frame("tray.slot2").t[:2]) < 0.02


# ---- CLI --------------------------------------------------------------------------------

def test_cli_record_script_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.npz"
    code = main(["record", "--cell", str(TABLETOP), "--script", str(DEMO_SCRIPT), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    for needle in ("samples:", "achieved rate: 120.0 Hz", "lost samples: 0", "duration:", "close at", "open at",
                   f"written: {out}"):
        assert needle in text
    demo = Demonstration.load(out)
    assert demo.provenance.source == f"script:{DEMO_SCRIPT}" and [e.kind for e in demo.events] == ["close", "open"]


@pytest.mark.parametrize("extra,needle", [
    (["--script", "DEMO", "--rate", "0"], r"must be in \(0, 1000\]"),
    (["--script", "DEMO", "--rate", "5000"], r"must be in \(0, 1000\]"),
    (["--script", "missing_demo.py"], "'missing_demo.py' does not exist"),
    ([], "give --script FILE.py .* or --gui"),
    (["--script", "DEMO", "--out", "demo.csv"], "a demonstration is a .npz file"),
    (["--script", "DEMO", "--duration", "-1"], "--duration -1.0 s must be a positive"),
    (["--backend", "tcp://127.0.0.1:9", "--gui"], "--gui teleoperates the simulator"),
])
def test_cli_record_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                             needle: str) -> None:
    args = ["record", "--cell", str(TABLETOP), "--out", str(tmp_path / "d.npz")]
    args += [str(DEMO_SCRIPT) if a == "DEMO" else a for a in extra]
    code = main(args)
    out = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out.err
    assert " ".join(out.err.split()).count("error") == 1
    import re

    assert re.search(needle, " ".join(out.err.split())), out.err


def test_cli_script_without_demonstrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "nothing.py"
    script.write_text("x = 1\n")
    code = main(["record", "--cell", str(TABLETOP), "--script", str(script), "--out", str(tmp_path / "d.npz")])
    assert code == 2 and "must define a function demonstrate(cell)" in capsys.readouterr().err


# ---- teleoperation ------------------------------------------------------------------------

def test_teleop_headless_with_scripted_source(tabletop: Cell) -> None:
    from robocell.sim.teleop import ScriptedSource, TeleopCommand, teleoperate

    arm = tabletop.arm()
    p = tabletop.object_pose("red_block").t
    x = arm.state().tcp.R[:, 0]
    yaw = math.atan2(x[1], x[0])
    keys = [(0.0, TeleopCommand(p + [0, 0, 0.08], yaw, False)), (2.5, TeleopCommand(p.copy(), yaw, False)),
            (3.5, TeleopCommand(p.copy(), yaw, True)), (4.5, TeleopCommand(p + [0, 0, 0.15], yaw, True))]
    with record(tabletop, source="teleop") as rec:
        stats = teleoperate(tabletop, ScriptedSource(keys, end=6.0))
    demo = rec.demonstration()
    assert [e.kind for e in demo.events] == ["close"]
    assert demo.events[0].t == pytest.approx(3.5, abs=0.02)
    assert stats.unreachable == 0 and stats.gripper_commands == 1
    assert tabletop.object_pose("red_block").t[2] > 0.12  # lifted in the hand
    speeds = np.linalg.norm(np.diff(demo.tcp_positions(), axis=0), axis=1) / np.diff(demo.t)
    assert speeds.max() < 0.25 * 1.1  # the commanded TCP speed limit held
    # a target far out of the workspace: the arm stops at its edge and holds instead of following
    far = ScriptedSource([(0.0, TeleopCommand(np.array([2.0, -0.25, 0.17]), yaw, True))], end=1.0)
    stats = teleoperate(tabletop, far, max_speed=2.0)
    assert stats.unreachable > 0
    assert arm.state().tcp.t[0] <= arm.safety.workspace_max[0] + 0.01


def test_teleop_sliders_need_the_gui(tabletop: Cell) -> None:
    from robocell.sim.teleop import SliderSource

    arm = tabletop.arm()
    with pytest.raises(BackendError, match="need the PyBullet GUI"):
        SliderSource(tabletop.backend.world, arm.state().tcp, arm.safety.workspace_min,  # type: ignore[attr-defined]
                     arm.safety.workspace_max)
