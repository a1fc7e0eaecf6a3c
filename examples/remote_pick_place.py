"""The tabletop pick-and-place program, run against an arm server in another process.

    .venv/bin/python examples/remote_pick_place.py [PROGRAM.yaml] [--watchdog SECONDS]

This starts `robocell serve --driver sim` (PyBullet inside the server, paced
in real time) on a random loopback port, connects to it exactly as a program
connects to a real arm, runs the program, and checks where the red block
ended up. On a real cell the server runs next to the arm and you only run

    robocell run PROGRAM.yaml --cell CELL --backend tcp://ARM-HOST:5555 --keys keys/

The client keeps its lease with a liveness connection (docs/protocol.md §6):
libzmq's I/O thread heartbeats for it, so a client whose Python is busy is not
taken for dead. The simulated arm's server still allows 0.5 s of silence
(`robocell serve --watchdog 0.5 --liveness 0.5`) rather than the 50 ms a real
arm's server keeps: this example shares its machine with whatever else runs
there, and a client process that is descheduled as a whole (its I/O thread
too; the examples test freezes it for 0.2 s on purpose) would get the arm
stopped for it. Pass --watchdog 0.05 to try the defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL = HERE / "cells" / "tabletop.yaml"
PROGRAM = HERE / "programs" / "pick_place_red.yaml"
WATCHDOG = 0.5  # s; the server's default is 0.05 s


def main(program: Path = PROGRAM, watchdog: float = WATCHDOG) -> int:
    from robocell import Cell
    from robocell.errors import RobocellError
    from robocell.hardware.spawn import ServerProcess
    from robocell.run.runner import load_registry, run_file

    # `robocell serve` in another process, random loopback port
    server = ServerProcess(CELL, "--watchdog", str(watchdog), "--liveness", str(watchdog)).start()
    try:
        assert server.proc is not None
        print(f"arm server: {server.endpoint} (pid {server.proc.pid}, watchdog {watchdog * 1000:g} ms)")
        with Cell.load(CELL, server.endpoint) as cell:
            report = run_file(cell, program, load_registry(),
                              on_step=lambda i, step, status: print(f"step {i}: {step.text()} {status}"))
            bin_ = cell.spec.fixture("bin")
            inside = [o.name for o in cell.spec.objects if bin_.contains(cell.object_pose(o.name).t)]
            print(f"done: {report.steps} step(s) in {report.wall_time:.1f} s over ZeroMQ; in the bin: {inside}")
            return 0 if "red_block" in inside else 1
    except RobocellError as exc:
        print(f"error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run a program against a `robocell serve` process.")
    parser.add_argument("program", nargs="?", type=Path, default=PROGRAM, help="program file (YAML)")
    parser.add_argument("--watchdog", type=float, default=WATCHDOG,
                        help=f"the server's watchdog and liveness deadlines in seconds (default {WATCHDOG}; "
                             "robocell serve's are 0.05)")
    args = parser.parse_args()
    sys.exit(main(args.program, args.watchdog))
