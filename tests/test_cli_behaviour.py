"""What anyone expects of the command line: it saves on SIGTERM, exits cleanly, shows progress, refuses
absurd cell files, writes GIFs that play, has --version, and keeps users' files out of git."""

from __future__ import annotations

import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from robocell.cli.main import main

from tests.conftest import ROOT, TABLETOP

CELLS = sorted((ROOT / "examples" / "cells").glob("*.yaml"))
ROBOCELL = [sys.executable, "-m", "robocell"]


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


class Lines:
    """The stdout lines of a subprocess as they come, to wait on one with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._q.put(line)
        self._q.put(None)

    def wait_for(self, needle: str, deadline: float = 180.0) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if needle in line:
                return
        raise AssertionError(f"{needle!r} never came; stdout so far: {''.join(self.seen)}")

    def rest(self) -> str:
        out = []
        while (line := self._q.get(timeout=60)) is not None:
            out.append(line)
        return "".join(self.seen + out)


# ---- SIGTERM during a scripted recording ---------------------------------------------
SLOW_DEMO = '''
def demonstrate(cell):
    cell.wait(1.0)  # a second of simulated time: plenty of samples
    print("demonstrating", flush=True)
    while True:  # a long demonstration, stopped from outside
        cell.wait(0.05)
'''


def test_sigterm_during_record_script_saves_what_was_recorded(tmp_path: Path) -> None:
    from robocell.recording.demonstration import Demonstration

    script, out = tmp_path / "slow.py", tmp_path / "demo.npz"
    script.write_text(SLOW_DEMO)
    proc = subprocess.Popen([*ROBOCELL, "record", "--cell", str(TABLETOP), "--script", str(script), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = Lines(proc)
        lines.wait_for("demonstrating")  # the script's own word: a second of the demonstration is recorded
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=180)
        stdout, stderr = lines.rest(), proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, stdout + stderr
    assert "stopped by SIGTERM" in stdout and f"written: {out}" in stdout
    demo = Demonstration.load(out)
    assert demo.n_samples >= 100 and demo.duration >= 0.99  # at least the second before the marker


# ---- a clean exit: no nanobind "leaked instance" lists --------------------------------
def test_serve_exits_without_nanobind_leak_warnings() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*ROBOCELL, "serve", "--cell", str(TABLETOP), "--bind", f"tcp://127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = Lines(proc)
        lines.wait_for("robocell serve: arm 'panda'")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, stderr
    assert "leaked" not in stderr, stderr


def test_teach_exits_without_nanobind_leak_warnings(tmp_path: Path) -> None:
    done = subprocess.run([*ROBOCELL, "teach", "put the red block in the bin", "--cell", str(TABLETOP),
                           "--picture", str(tmp_path / "teach.png")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "preview in simulation passed" in done.stdout
    assert "leaked" not in done.stderr, done.stderr


# ---- progress per skill call, and one skill call as the target ------------------------
def test_run_takes_one_skill_call_and_prints_a_line_per_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "run", "pick_and_place", "object=red_block", "target=bin", "--cell", TABLETOP)
    assert code == 0, out
    assert "step 1/1: pick_and_place(object='red_block', target='bin') ... ok (" in out
    code, out = run_cli(capsys, "run", "pick_and_place", "object=unicorn", "target=bin", "--cell", TABLETOP)
    assert code == 2 and "unicorn" in out and "Traceback" not in out


def test_run_program_and_script_print_each_skill_call(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "run", ROOT / "examples" / "programs" / "clear_table.yaml", "--cell", TABLETOP)
    assert code == 0, out
    import re

    steps = re.findall(r"step (\d+)/(\d+): (\w+)\(.*\) \.\.\. ok \((\d+\.\d\d) s\)", out)
    assert steps and [int(s[0]) for s in steps] == list(range(1, int(steps[0][1]) + 1)), out
    code, out = run_cli(capsys, "run", ROOT / "examples" / "pick_place_script.py", "--cell", TABLETOP)
    assert code == 0, out
    assert "step 1: pick(object='green_block') ... ok (" in out
    assert "step 2: place(target='tray.slot2') ... ok (" in out
    assert "step 3: home() ... ok (" in out
    assert "step 4" not in out  # the skills pick and place call inside are not listed


def test_a_failing_step_says_failed_with_its_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "run", "place", "target=bin", "--cell", TABLETOP)  # holding nothing
    assert code == 2 and "step 1/1: place(target='bin') ... failed (" in out, out


# ---- GIF frame delay ------------------------------------------------------------------
def test_recorded_gif_plays_at_the_recording_rate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import inspect

    from PIL import Image

    from robocell.sim.camera import GifRecorder

    gif = tmp_path / "run.gif"
    code, out = run_cli(capsys, "run", "pick_and_place", "object=red_block", "target=bin", "--cell", TABLETOP,
                        "--record", gif)
    assert code == 0, out
    fps = inspect.signature(GifRecorder).parameters["fps"].default  # what `run --record` records at
    with Image.open(gif) as im:
        assert im.n_frames > 5
        delays = []
        for k in range(im.n_frames):
            im.seek(k)
            delays.append(im.info["duration"])
    # GIF stores centiseconds: the delay is the recording interval, rounded to 10 ms
    assert set(delays) == {round(1000 / fps, -1)}, delays


# ---- cell files that must not pass ------------------------------------------------------
def _laughs(tmp_path: Path) -> Path:
    lines = ["version: 1", "name: lol", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines += ["arms: [{name: panda, model: panda}]", "objects: *a8"]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_billion_laughs_cell_file_is_refused_at_once(tmp_path: Path) -> None:
    # a generous deadline, not a timing figure: unbounded, the check ran for minutes
    done = subprocess.run([*ROBOCELL, "cell", "check", str(_laughs(tmp_path))], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "anchors and aliases" in done.stderr and "billion laughs" in done.stderr
    assert "Traceback" not in done.stderr


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    from robocell.cellfile.yamlio import DocumentTooLarge, load_yaml

    with pytest.raises(DocumentTooLarge, match="recursive anchor"):
        load_yaml("a: &a [1, *a]\n")
    assert load_yaml("a: &a [1, 2]\nb: *a\n") == {"a": [1, 2], "b": [1, 2]}  # plain aliases still work


@pytest.mark.parametrize("old,new,needle", [
    ("pose: {xyz: [0.45, -0.25, 0.02]}", "pose: {xyz: [3.0, 2.0, 0.02]}",
     "objects[0].pose: [3.0, 2.0, 0.02] is not allowed: object 'red_block' at (3.000, 2.000) m is off the table "
     "(x -0.25..0.95 m, y -0.50..0.50 m)"),
    ("pose: {xyz: [0.45, -0.25, 0.02]}", "pose: {xyz: [0.45, -0.25, -1.0]}",
     "objects[0].pose: [0.45, -0.25, -1.0] is not allowed: its underside is at z = -1.020 m, 1.020 m below the "
     "table top"),
    ("pose: {xyz: [0.45, 0.30, 0.0]}", "pose: {xyz: [0.45, 0.30, -0.3]}",
     "fixtures[0].pose: [0.45, 0.3, -0.3] is not allowed: its pose is at z = -0.300 m"),
    ("randomize: {x: [-0.03, 0.03], y: [-0.03, 0.03], yaw: [-0.5, 0.5]}\n  - name: green_block",
     "randomize: {x: [-0.03, 0.6], y: [-0.03, 0.03]}\n  - name: green_block",
     "objects[0].randomize: {x: [-0.03, 0.6], y: [-0.03, 0.03], yaw: [0.0, 0.0]} is not allowed: object "
     "'red_block' may be placed anywhere in x 0.420..1.050 m"),
    ("size: [1.2, 1.0, 0.05]", "size: [1.9, 1.0, 0.05]",  # on a long table, but beyond the arm's workspace
     None),
])
def test_objects_off_the_table_below_it_or_out_of_reach_are_refused(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path, old: str, new: str,
                                                                     needle: str | None) -> None:
    text = TABLETOP.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    if needle is None:
        text = text.replace("pose: {xyz: [0.45, -0.25, 0.02]}", "pose: {xyz: [1.2, 0.0, 0.02]}", 1)
        needle = ("object 'red_block' at (1.200, 0.000) m is outside every arm's safety.workspace "
                  "(panda: x -0.20..0.90 m, y -0.60..0.60 m), so no arm could reach it")
    cell = tmp_path / "cell.yaml"
    cell.write_text(text)
    code, out = run_cli(capsys, "cell", "check", cell)
    assert code == 2 and "Traceback" not in out
    assert needle in out, out


@pytest.mark.parametrize("cell", CELLS, ids=[c.stem for c in CELLS])
def test_every_example_cell_still_passes(capsys: pytest.CaptureFixture[str], cell: Path) -> None:
    code, out = run_cli(capsys, "cell", "check", cell)
    assert code == 0, out


# ---- --version and .gitignore ------------------------------------------------------------
def test_version_comes_from_the_package_metadata() -> None:
    done = subprocess.run([*ROBOCELL, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"robocell {version('robocell')}"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_gitignore_keeps_secrets_outputs_and_user_work_out_of_git(tmp_path: Path) -> None:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert git("ls-files", "-ci", "--exclude-standard").stdout == ""  # no tracked file is ignored
    keys = tmp_path / "keys"
    assert main(["keys", "generate", str(keys)]) == 0
    # what `robocell keys generate keys/` (the README's command) writes, as paths in the checkout
    written = [f"keys/{p.relative_to(keys)}" for p in keys.rglob("*") if p.is_file()]
    secrets = [p for p in written if p.endswith(".key_secret")]
    assert len(secrets) == 2
    paths = written + ["elsewhere/cell3.key_secret", "out/run.gif", "out/report/index.html", "demo.npz",
                       "recordings/teleop.npz", "learned_skills/tray_it.skill.json", "library/tasks/tidy.yaml"]
    checked = git("check-ignore", "--no-index", "-v", *paths)
    ignored = {line.split("\t")[-1] for line in checked.stdout.splitlines()}
    assert ignored == set(paths), checked.stdout
