"""Every example in examples/ runs, as a user would run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from robocell.cli.main import main

from tests.conftest import KUKA, ROOT, TABLETOP

EXAMPLES = ROOT / "examples"
# Starts its own server; README.md's remote quick start runs it as a program (tests/test_docs_commands.py),
# and its exit code says whether red_block ended in the bin.
STANDALONE = {"remote_pick_place.py"}
RUNNABLE = sorted(EXAMPLES.glob("programs/*.yaml")) + sorted(
    p for p in EXAMPLES.glob("*.py") if p.name not in STANDALONE)


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_example_runs_on_tabletop(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(path), "--cell", str(TABLETOP)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "done" in out.out


def test_remote_example_survives_a_briefly_descheduled_client() -> None:
    """A busy host that deschedules the example's client for 0.2 s must not get its arm stopped.

    The stall is made on purpose (SIGSTOP, SIGCONT) while the arm moves, so the test does not
    depend on how busy the machine happens to be; a 50 ms watchdog stops the arm every time.
    """
    import os
    import re
    import select
    import signal
    import subprocess
    import sys
    import time

    from robocell.hardware.client import Connection

    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "remote_pick_place.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end and not (seen and seen[-1].startswith("arm server: ")):
            ready, _, _ = select.select([proc.stdout], [], [], t_end - time.monotonic())
            line = proc.stdout.readline() if ready else ""
            if not line:
                break
            seen.append(line)
        m = re.match(r"arm server: (tcp://\S+) ", seen[-1] if seen else "")
        assert m, "".join(seen)
        observer = Connection(m.group(1), timeout=5.0)
        try:
            t_end = time.monotonic() + 120
            while observer.next_state()["mode"] != "moving":  # the example's client drives the arm
                assert time.monotonic() < t_end and proc.poll() is None, "".join(seen)
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                time.sleep(0.2)  # the injected stall itself, not a wait for something
            finally:
                os.kill(proc.pid, signal.SIGCONT)
        finally:
            observer.close()
        rest, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    out = "".join(seen) + rest
    assert proc.returncode == 0, out
    assert "in the bin: ['red_block']" in out and "watchdog" not in out.replace("watchdog 500 ms", "")


def test_clear_table_runs_on_kuka(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(EXAMPLES / "programs" / "clear_table.yaml"), "--cell", str(KUKA), "--seed", "5"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err


def test_demo_puts_every_block_in_the_bin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    picture = tmp_path / "demo.png"
    code = main(["demo", "--picture", str(picture)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3/3 objects in 'bin'" in out
    import imageio.v3 as iio

    image = iio.imread(picture)
    assert image.shape == (480, 640, 3) and image.std() > 20  # a scene, not a blank frame


@pytest.mark.parametrize("cell", [TABLETOP, KUKA], ids=["tabletop", "kuka"])
def test_example_cells_check(cell: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cell", "check", str(cell)]) == 0
