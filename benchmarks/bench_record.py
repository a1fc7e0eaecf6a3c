"""Recording from a remote arm, measured against a plain state-reading loop in the same run.

A server with the sim driver publishes state at 1 kHz in another process.
Baseline: a thread that only reads the stream (``Connection.next_state``) for
the same time.  Then ``robocell.recording.recorder.record`` at 100, 250 and 500 Hz for
``--seconds`` each while a client streams a slow joint motion (so the samples
change): achieved rate on the server clock, lost samples (periods without a
sample), and the recorder thread's CPU time per state read and per sample
kept, against the baseline's CPU time per state.

Run: .venv/bin/python benchmarks/bench_record.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np

from robocell.core.cell import Cell
from robocell.hardware.client import Connection
from robocell.hardware.spawn import ServerProcess
from robocell.recording.recorder import record

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "examples" / "cells" / "tabletop.yaml"


def baseline(endpoint: str, seconds: float) -> tuple[int, float]:
    """(states read, CPU s) of a thread doing nothing but Connection.next_state."""
    out: list[tuple[int, float]] = []

    def run() -> None:
        conn = Connection(endpoint)
        try:
            n, cpu0 = 0, time.thread_time()
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                conn.next_state()
                n += 1
            out.append((n, time.thread_time() - cpu0))
        finally:
            conn.close()

    th = threading.Thread(target=run)
    th.start()
    th.join()
    return out[0]


def mover(endpoint: str, stop: threading.Event) -> None:
    """Keep the arm moving back and forth (another client, as a script or an operator would)."""
    with Cell.load(CELL, endpoint) as cell:
        arm = cell.arm()
        q0 = arm.state().q
        k = 0
        while not stop.is_set():
            arm.move_joints(q0 + np.array([0.3 if k % 2 == 0 else 0.0, 0, 0, 0, 0, 0, 0]), speed=0.5)
            k += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    with ServerProcess(CELL, "--state-rate", "1000", "--watchdog", "0.5") as srv:
        stop = threading.Event()
        th = threading.Thread(target=mover, args=(srv.endpoint, stop), daemon=True)
        th.start()
        try:
            for rate in (100.0, 250.0, 500.0):
                # the baseline right before each recording, under the same load (the moving client)
                n, cpu = baseline(srv.endpoint, args.seconds)
                base_us = cpu / n * 1e6
                print(f"baseline: {n} states in {args.seconds:g} s ({n / args.seconds:.0f} Hz), "
                      f"{base_us:.1f} us CPU per state (plain Connection.next_state loop)")
                with Cell.load(CELL, srv.endpoint, observe=True) as cell:
                    with record(cell, rate=rate, source="benchmark") as rec:
                        threading.Event().wait(args.seconds)
                    demo = rec.demonstration()
                    s = rec.sampler
                    per_state = s.cpu_time / s.states * 1e6  # type: ignore[union-attr]
                    extra = (s.cpu_time - base_us * 1e-6 * s.states) / s.samples * 1e6  # type: ignore[union-attr]
                    dt = np.diff(demo.t) * 1e3
                    print(f"record {rate:g} Hz: {demo.n_samples} samples over {demo.duration:.2f} s, achieved "
                          f"{demo.achieved_rate:.2f} Hz (server clock), lost {rec.lost_samples}, "
                          f"interval p50 {np.median(dt):.2f} ms max {dt.max():.2f} ms; recorder "
                          f"{per_state:.1f} us CPU per state read ({per_state / base_us:.2f}x baseline), "
                          f"{extra:+.1f} us per sample kept over the baseline")
        finally:
            stop.set()
            th.join(timeout=10)


if __name__ == "__main__":
    main()
