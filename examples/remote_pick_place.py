"""The tabletop pick-and-place program, run against an arm server in another process.

    .venv/bin/python examples/remote_pick_place.py [PROGRAM.yaml]

This starts `robocell serve --driver sim` (PyBullet inside the server, paced
in real time) on a random loopback port, connects to it exactly as a program
connects to a real arm, runs the program, and checks where the red block
ended up. On a real cell the server runs next to the arm and you only run

    robocell run PROGRAM.yaml --cell CELL --backend tcp://ARM-HOST:5555 --keys keys/
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL = HERE / "cells" / "tabletop.yaml"
PROGRAM = HERE / "programs" / "pick_place_red.yaml"


def main(program: Path = PROGRAM) -> int:
    from robocell import Cell
    from robocell.hardware.spawn import ServerProcess
    from robocell.runner import load_registry, run_file

    server = ServerProcess(CELL).start()  # `robocell serve` in another process, random loopback port
    try:
        assert server.proc is not None
        print(f"arm server: {server.endpoint} (pid {server.proc.pid})")
        with Cell.load(CELL, server.endpoint) as cell:
            report = run_file(cell, program, load_registry(),
                              on_step=lambda i, step, status: print(f"step {i}: {step.text()} {status}"))
            bin_ = cell.spec.fixture("bin")
            inside = [o.name for o in cell.spec.objects if bin_.contains(cell.object_pose(o.name).t)]
            print(f"done: {report.steps} step(s) in {report.wall_time:.1f} s over ZeroMQ; in the bin: {inside}")
            return 0 if "red_block" in inside else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else PROGRAM))
