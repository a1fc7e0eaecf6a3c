"""A controlling client that is busy but alive: its main thread computes in pure Python while the arm moves.

``python -m tests.hardware.busy_client CELL ENDPOINT [--motions N] [--servo SECONDS] [--burst S]
[--heartbeat] [--hold-gil]``

1. ``--motions`` trajectory moves (joint 1 back and forth by 0.3 rad): each is started without
   waiting, then the main thread does a ``--burst`` (default 0.2 s) of pure-Python work holding
   the GIL, then waits for the move;
2. ``--servo`` seconds of a 250 Hz servo stream fed by a thread (a smooth sway of joint 1, each
   setpoint a small step from the one before, so a late setpoint only slows it), while the main
   thread does bursts back to back with 10 ms pauses; the stream is ended with ``servo_end``.

A stop (the server took this client for dead) is counted, reset, and the run goes on. Prints one
JSON line: what it did and every error it met. ``--heartbeat`` keeps the lease with application
heartbeats instead of a liveness connection (the baseline the liveness connection replaces);
``--hold-gil`` makes every burst hold the GIL from start to end (a long C call does that), so the
client's other Python threads are starved for whole bursts, whatever the machine's load.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import numpy as np

from robocell.core.cell import Cell
from robocell.errors import LeaseError, RobocellError

SERVO_DT = 0.004  # s: 250 Hz


def burst(seconds: float) -> int:
    """Pure-Python work holding the GIL for ``seconds`` (checks the clock every few thousand steps)."""
    t_end = time.monotonic() + seconds
    n = 0
    x = 0
    while True:
        for i in range(5000):
            x = (x * 31 + i) % 1000003
        n += 1
        if time.monotonic() >= t_end:
            return n + x % 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cell")
    ap.add_argument("endpoint")
    ap.add_argument("--motions", type=int, default=4)
    ap.add_argument("--servo", type=float, default=2.0)
    ap.add_argument("--burst", type=float, default=0.2)
    ap.add_argument("--heartbeat", action="store_true")
    ap.add_argument("--hold-gil", action="store_true",
                    help="each burst holds the GIL throughout (no thread switch), like a long C call")
    a = ap.parse_args()
    if a.hold_gil:
        sys.setswitchinterval(10.0)  # longer than any burst: the other Python threads wait for its end
    report: dict[str, Any] = {"motions": 0, "completed": 0, "motion_errors": [], "setpoints": 0,
                              "servo_errors": [], "max_gap": 0.0, "resets": 0}
    with Cell.load(a.cell, a.endpoint, liveness=not a.heartbeat, timeout=5.0) as cell:
        arm = cell.arm()
        conn = arm.conn  # type: ignore[attr-defined]
        q0 = arm.state().q.copy()
        for k in range(a.motions):
            goal = q0.copy()
            goal[0] += 0.3 if k % 2 == 0 else 0.0
            report["motions"] += 1
            try:
                handle = arm.move_joints(goal, wait=False, speed=0.5)
                burst(a.burst)
                if handle.wait().completed:  # type: ignore[union-attr]
                    report["completed"] += 1
            except RobocellError as exc:
                report["motion_errors"].append(f"{type(exc).__name__}: {exc}")
                _recover(arm, report)
        q_start = arm.state().q.copy()
        stop = threading.Event()

        def stream() -> None:
            # this thread owns the connection while it streams (ZeroMQ sockets are not thread-safe)
            n = int(a.servo / SERVO_DT)
            t_next = time.monotonic()
            last = t_next
            for k in range(n):
                if stop.is_set():
                    break
                target = q_start.copy()
                target[0] += 0.15 * (1 - np.cos(2 * np.pi * k / 500)) / 2  # 0.5 Hz at 250 Hz: < 0.25 rad/s
                try:
                    arm.servo(target, dt=SERVO_DT, wait=False)  # type: ignore[call-arg]
                except RobocellError as exc:
                    report["servo_errors"].append(f"{type(exc).__name__}: {exc} (setpoint {k}, "
                                                  f"{(time.monotonic() - last) * 1000:.0f} ms after the one before)")
                    break
                now = time.monotonic()
                report["max_gap"] = max(report["max_gap"], now - last)
                last = now
                report["setpoints"] += 1
                t_next = max(t_next + SERVO_DT, now - 2 * SERVO_DT)  # late: carry on from now, no catch-up burst
                time.sleep(max(0.0, t_next - time.monotonic()))
            try:
                arm.end_servo()  # type: ignore[attr-defined]
            except RobocellError as exc:
                report["servo_errors"].append(f"{type(exc).__name__}: {exc}")

        if a.servo > 0:
            th = threading.Thread(target=stream, name="servo-stream")
            th.start()
            while th.is_alive():
                burst(a.burst)
                th.join(timeout=0.01)
            if report["servo_errors"]:
                _recover(arm, report)
        t_end = time.monotonic() + 3.0
        mode = conn.state()["mode"]
        while mode == "servo" and time.monotonic() < t_end:  # an ended stream settles on its last setpoint
            mode = conn.next_state()["mode"]
        report["final_mode"] = mode
    print(json.dumps(report), flush=True)


def _recover(arm: Any, report: dict[str, Any]) -> None:
    """After a stop: take the lease again if it was lost, and reset."""
    conn = arm.conn
    try:
        if arm.state().mode.value == "stopped" or conn.lease is None:
            if conn.lease is None:
                conn.acquire()
            arm.reset()
            report["resets"] += 1
    except LeaseError:
        try:
            conn.acquire()  # the server ended the lease without this client noticing yet: take it again
            if arm.state().mode.value == "stopped":
                arm.reset()
                report["resets"] += 1
        except RobocellError as exc:
            report["motion_errors"].append(f"recovery: {type(exc).__name__}: {exc}")
    except RobocellError as exc:
        report["motion_errors"].append(f"recovery: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
