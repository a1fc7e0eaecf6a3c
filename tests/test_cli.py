"""The command line: user mistakes give a clear message and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robocell.cli.main import main

from tests.conftest import KUKA, ROOT, TABLETOP

PROGRAMS = ROOT / "examples" / "programs"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_cell_check_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "cell", "check", TABLETOP)
    assert code == 0
    assert "red_block" in out and "bin" in out and "valid cell file" in out
    code, out = run_cli(capsys, "cell", "check", KUKA)
    assert code == 0 and "kuka_iiwa" in out


def test_skills_lists_signatures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "skills")
    assert code == 0
    assert "pick_and_place(object: object, target: target)" in out
    assert "Pick an object from above" in out


@pytest.mark.parametrize("args,needle", [
    (["run", "nope.yaml", "--cell", str(TABLETOP)], "'nope.yaml' does not exist"),
    (["run", str(PROGRAMS / "pick_place_red.yaml"), "--cell", "missing.yaml"], "missing.yaml"),
    (["run", str(PROGRAMS / "pick_place_red.yaml"), "--cell", str(TABLETOP), "--backend", "carrier-pigeon"],
     "unknown backend 'carrier-pigeon'"),
    (["eval", "prog.yaml", "--cell", str(TABLETOP)], "does not exist"),
])
def test_user_mistakes_exit_2_without_traceback(capsys: pytest.CaptureFixture[str], args: list[str],
                                                needle: str) -> None:
    code, out = run_cli(capsys, *args)
    assert code == 2
    assert needle in out
    assert "Traceback" not in out


def test_bad_program_names_problem_and_debug_shows_traceback(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    prog = tmp_path / "bad.yaml"
    prog.write_text("version: 1\nsteps:\n  - pick: {object: unicorn}\n")
    code, out = run_cli(capsys, "run", prog, "--cell", TABLETOP)
    assert code == 2 and "unknown object 'unicorn'" in out and "Traceback" not in out
    code, out = run_cli(capsys, "--debug", "run", prog, "--cell", TABLETOP)
    assert code == 2 and "Traceback" in out


def test_nan_pose_in_program(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prog = tmp_path / "nan.yaml"
    prog.write_text("version: 1\nsteps:\n  - move_to: {pose: [0.4, 0, .nan, 3.14, 0, 0]}\n")
    code, out = run_cli(capsys, "run", prog, "--cell", TABLETOP)
    assert code == 2 and "NaN" in out


def test_unreachable_frame_is_a_clean_failure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cell = tmp_path / "cell.yaml"
    cell.write_text(TABLETOP.read_text() + "\n")
    prog = tmp_path / "far.yaml"
    prog.write_text("version: 1\nsteps:\n  - move_to: {pose: [0.85, 0.55, 0.85, 3.14159, 0, 0]}\n")
    code, out = run_cli(capsys, "run", prog, "--cell", cell)
    assert code == 2 and "mm" in out and "Traceback" not in out


def test_eval_json_and_replay_by_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "eval", PROGRAMS / "pick_place_red.yaml", "--cell", TABLETOP,
                        "--trials", "2", "--seed", "7", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["trials"] == 2 and 0.0 <= report["success_rate"] <= 1.0
    assert report["mean_wall_time_s"] > 0


def test_eval_trials_are_deterministic() -> None:
    from robocell.eval.evaluate import run_trial, trial_seeds

    seed = trial_seeds(3, 1)[0]
    a = run_trial(TABLETOP, PROGRAMS / "pick_place_red.yaml", seed)
    b = run_trial(TABLETOP, PROGRAMS / "pick_place_red.yaml", seed)
    assert a.success == b.success and a.sim_time == pytest.approx(b.sim_time)


def test_run_script_with_record_and_picture(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gif, png = tmp_path / "run.gif", tmp_path / "final.png"
    code, out = run_cli(capsys, "run", ROOT / "examples" / "pick_place_script.py", "--cell", TABLETOP,
                        "--record", gif, "--picture", png, "--seed", "1")
    assert code == 0, out
    import imageio.v3 as iio

    frames = iio.imread(gif, index=None)
    assert frames.shape[0] > 20 and frames.shape[-1] in (3, 4)
    assert frames.std() > 5  # not a blank animation
    image = iio.imread(png)
    assert image.shape[:2] == (480, 640)


def test_console_script_help_is_fast_and_light() -> None:
    out = subprocess.run([sys.executable, "-m", "robocell", "--help"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert "run" in out.stdout and "eval" in out.stdout and "demo" in out.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, robocell, robocell.cli.main; "
         "print(sorted(m for m in ('pybullet','torch','roboticstoolbox','transformers','spatialmath','scipy') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.strip() == "[]"
