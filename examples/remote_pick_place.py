"""The tabletop pick-and-place program, run against an arm server in another process.

    .venv/bin/python examples/remote_pick_place.py [PROGRAM.yaml]

This starts `robocell serve --driver sim` (PyBullet inside the server, paced
in real time) on a random loopback port, connects to it exactly as a program
connects to a real arm, runs the program, and checks where the red block
ended up. On a real cell the server runs next to the arm and you only run

    robocell run PROGRAM.yaml --cell CELL --backend tcp://ARM-HOST:5555 --keys keys/
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL = HERE / "cells" / "tabletop.yaml"
PROGRAM = HERE / "programs" / "pick_place_red.yaml"


def start_server(cell: Path) -> tuple[subprocess.Popen[str], str]:
    """`robocell serve` in another process; returns it and its command endpoint."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "robocell", "serve", "--cell", str(cell), "--bind", "tcp://127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the server prints one line once it listens
        match = re.search(r"on (tcp://\S+) state", line)
        if match:
            return proc, match.group(1)
    proc.wait()
    raise RuntimeError(f"robocell serve exited with code {proc.returncode}")


def main(program: Path = PROGRAM) -> int:
    from robocell import Cell
    from robocell.runner import load_registry, run_file

    server, endpoint = start_server(CELL)
    try:
        print(f"arm server: {endpoint} (pid {server.pid})")
        with Cell.load(CELL, endpoint) as cell:
            report = run_file(cell, program, load_registry(),
                              on_step=lambda i, step, status: print(f"step {i}: {step.text()} {status}"))
            bin_ = cell.spec.fixture("bin")
            inside = [o.name for o in cell.spec.objects if bin_.contains(cell.object_pose(o.name).t)]
            print(f"done: {report.steps} step(s) in {report.wall_time:.1f} s over ZeroMQ; in the bin: {inside}")
            return 0 if "red_block" in inside else 1
    finally:
        server.send_signal(signal.SIGINT)  # a clean stop: the driver holds the arm, the audit log closes
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else PROGRAM))
