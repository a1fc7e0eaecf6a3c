"""Output paths: checked before any work, never replaced without --force, one paragraph and exit 2 otherwise."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from robocell.cli.main import main

from tests.conftest import ROOT, TABLETOP

PROGRAM = ROOT / "examples" / "programs" / "pick_place_red.yaml"
# Two ways an output folder cannot be written, even by root: a regular file where a folder
# should be (/dev/null), and a kernel file system that takes no new files (/proc).
UNDER_FILE = Path("/dev/null/robocell")
UNWRITABLE = Path("/proc/robocell")


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short, real recording (the arm waits): enough for `learn` to read it and check its outputs."""
    from robocell.core.cell import Cell
    from robocell.recording.recorder import record

    out = tmp_path_factory.mktemp("demo") / "wait.npz"
    with Cell.load(TABLETOP) as cell:
        with record(cell, rate=50.0, source="script:test", cell_file=TABLETOP) as rec:
            cell.wait(0.5)
        rec.demonstration().save(out)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# option, command (given the bad output path), a word of the work that must not have started
CASES: dict[str, tuple[str, Callable[[Path, Path], list[object]], str]] = {
    "run --record": ("--record", lambda p, d: ["run", PROGRAM, "--cell", TABLETOP, "--record", p / "run.gif"],
                     "step 1"),
    "run --picture": ("--picture", lambda p, d: ["run", PROGRAM, "--cell", TABLETOP, "--picture", p / "end.png"],
                      "step 1"),
    "demo --record": ("--record", lambda p, d: ["demo", "--record", p / "demo.gif"], "pick_and_place"),
    "demo --picture": ("--picture", lambda p, d: ["demo", "--picture", p / "demo.png"], "pick_and_place"),
    "record --out": ("--out", lambda p, d: ["record", "--cell", TABLETOP, "--out", p / "demo.npz", "--script",
                                            ROOT / "examples" / "demos" / "pick_place_demo.py"], "recording at"),
    "eval --junit": ("--junit", lambda p, d: ["eval", PROGRAM, "--cell", TABLETOP, "--trials", "2", "--junit",
                                              p / "junit.xml"], "trial"),
    "eval --report": ("--report", lambda p, d: ["eval", PROGRAM, "--cell", TABLETOP, "--trials", "2", "--report",
                                                p / "report"], "trial"),
    "eval --trial --record": ("--record", lambda p, d: ["eval", PROGRAM, "--cell", TABLETOP, "--trial", "0",
                                                        "--record", p / "trial.gif"], "seed"),
    "learn --plot": ("--plot", lambda p, d: ["learn", d / "wait.npz", "--name", "waiter", "--cell", TABLETOP,
                                             "--library", d / "lib", "--plot", p / "plot.png"], "learned"),
    "learn --library": ("--library", lambda p, d: ["learn", d / "wait.npz", "--name", "waiter", "--cell", TABLETOP,
                                                   "--library", p / "lib"], "learned"),
    "serve --audit": ("--audit", lambda p, d: ["serve", "--cell", TABLETOP, "--bind",
                                               f"tcp://127.0.0.1:{_free_port()}", "--audit", p / "audit.jsonl"],
                      "robocell serve: arm"),
    "keys generate": ("keys generate", lambda p, d: ["keys", "generate", p / "keys"], "key_secret"),
}


@pytest.mark.parametrize("where", [UNDER_FILE, UNWRITABLE], ids=["under-a-file", "unwritable-folder"])
@pytest.mark.parametrize("case", list(CASES))
def test_an_unwritable_output_is_refused_before_the_work(capsys: pytest.CaptureFixture[str], demo_file: Path,
                                                         case: str, where: Path) -> None:
    option, command, work = CASES[case]
    code, out = run_cli(capsys, *command(where, demo_file.parent))
    assert code == 2, out
    assert "Traceback" not in out
    assert f"error (OutputError): {option} {where}" in out, out  # names the option and the path
    assert ("not a folder" in out) if where == UNDER_FILE else ("cannot write in /proc" in out), out
    assert work not in out.replace(f"{option} {where}", ""), out  # nothing started


def test_serve_on_a_port_in_use_says_so_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = run_cli(capsys, "serve", "--cell", TABLETOP, "--bind", f"tcp://127.0.0.1:{port}")
    assert code == 2 and "Traceback" not in out, out
    assert f"--bind tcp://127.0.0.1:{port}: the address is already in use" in out
    assert "robocell serve: arm" not in out


EXISTING: dict[str, Callable[[Path, Path], list[object]]] = {
    "run --picture": lambda f, d: ["run", "home", "--cell", TABLETOP, "--picture", f],
    "run --record": lambda f, d: ["run", "home", "--cell", TABLETOP, "--record", f],
    "record --out": lambda f, d: ["record", "--cell", TABLETOP, "--out", f, "--script",
                                  ROOT / "examples" / "demos" / "pick_place_demo.py"],
    "learn --plot": lambda f, d: ["learn", d / "wait.npz", "--name", "waiter", "--cell", TABLETOP,
                                  "--library", d / "lib", "--plot", f],
    "eval --junit": lambda f, d: ["eval", PROGRAM, "--cell", TABLETOP, "--trials", "1", "--junit", f],
}
SUFFIX = {"run --picture": ".png", "run --record": ".gif", "record --out": ".npz", "learn --plot": ".png",
          "eval --junit": ".xml"}


@pytest.mark.parametrize("case", list(EXISTING))
def test_an_existing_file_is_not_replaced_without_force(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        demo_file: Path, case: str) -> None:
    precious = tmp_path / f"precious{SUFFIX[case]}"
    precious.write_bytes(b"an hour of work")
    code, out = run_cli(capsys, *EXISTING[case](precious, demo_file.parent))
    assert code == 2 and "Traceback" not in out, out
    assert f"{precious}: the file exists; nothing was written" in out and "--force" in out
    assert precious.read_bytes() == b"an hour of work"


def test_force_replaces_an_existing_picture(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    picture = tmp_path / "end.png"
    picture.write_bytes(b"old")
    code, out = run_cli(capsys, "run", "home", "--cell", TABLETOP, "--picture", picture, "--force")
    assert code == 0, out
    import imageio.v3 as iio

    assert iio.imread(picture).shape[:2] == (480, 640)


def test_a_non_empty_report_folder_needs_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    code, out = run_cli(capsys, "eval", PROGRAM, "--cell", TABLETOP, "--trials", "1", "--report", tmp_path)
    assert code == 2 and f"--report {tmp_path}: the folder exists and is not empty" in out


def test_an_audit_log_is_appended_to(tmp_path: Path) -> None:
    from robocell.core.outputs import check_output

    log = tmp_path / "audit.jsonl"
    log.write_text('{"earlier": true}\n')
    assert check_output(log, "--audit", kind="append") == log  # an existing log is no mistake
    assert log.read_text() == '{"earlier": true}\n'


def test_keys_are_never_overwritten_but_a_folder_with_other_files_is_fine(capsys: pytest.CaptureFixture[str],
                                                                         tmp_path: Path) -> None:
    (tmp_path / "README").write_text("keys of cell 3")
    code, out = run_cli(capsys, "keys", "generate", tmp_path)
    assert code == 0 and (tmp_path / "server.key_secret").is_file(), out
    secret = (tmp_path / "server.key_secret").read_bytes()
    code, out = run_cli(capsys, "keys", "generate", tmp_path)
    assert code == 2 and "exists already" in out
    assert (tmp_path / "server.key_secret").read_bytes() == secret
