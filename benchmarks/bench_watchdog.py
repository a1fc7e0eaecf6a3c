"""Watchdog and liveness: dead clients stopped in time, busy clients never (issue 12, item G).

1. SIGKILL the controlling client mid-motion N times, for a client on a liveness connection and,
   as the baseline in the same run, one on application heartbeats; the server's own record gives
   how long it had heard nothing from the client when it stopped the arm (limit: deadline + 10 ms)
   and when it did (``at``, CLOCK_MONOTONIC: compared with the moment of the kill).
2. The same with SIGSTOP (a frozen client: its libzmq I/O thread is frozen too).
3. False stops: a client whose main thread does 200 ms bursts of pure-Python work while it runs
   trajectory motions and while a thread of it streams servo setpoints at 250 Hz, with two
   CPU-bound processes beside it; counted from the server's watchdog record. Liveness connection
   against application heartbeats (the baseline), same server, same run.

Run: .venv/bin/python benchmarks/bench_watchdog.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from robocell.hardware.client import Connection
from robocell.hardware.spawn import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "examples" / "cells" / "tabletop.yaml"
DEADLINE = 0.05  # s: robocell serve's default watchdog and liveness deadlines

VICTIM = textwrap.dedent("""
    import sys
    import numpy as np
    from robocell.hardware.client import Connection
    c = Connection(sys.argv[1], timeout=5.0, liveness=sys.argv[3] == "liveness")
    c.acquire()
    q = np.asarray(c.state()["q_cmd"])
    q[0] += float(sys.argv[2])
    c.request("move_joints", {"q": q.tolist(), "speed": 0.3})
    print("moving", flush=True)
    sys.stdin.read()
""")


def pct(x: list[float] | np.ndarray, p: float) -> float:
    return float(np.percentile(np.asarray(x), p))


def _clear(obs: Connection) -> None:
    """Take the freed lease, reset the latched stop, give the lease back."""
    while obs.state()["lease"] is not None:
        obs.next_state()
    obs.acquire()
    while True:
        try:
            obs.request("reset")
            break
        except Exception:  # noqa: BLE001 - BUSY while the stop decelerates
            obs.next_state()
    obs.release()


def bench_kill(ep: str, trials: int, channel: str, sig: int) -> str:
    silent: list[float] = []
    reaction: list[float] = []  # s from the kill to the server's stop command (its own clock)
    causes: set[str] = set()
    obs = Connection(ep, timeout=5.0)
    try:
        for k in range(trials):
            v = subprocess.Popen([sys.executable, "-c", VICTIM, ep, "0.8" if k % 2 == 0 else "-0.8", channel],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
            assert v.stdout is not None and v.stdout.readline().strip() == "moving"
            while obs.next_state()["mode"] != "moving":
                continue
            n0 = len(obs.request("stats")["watchdog"])
            t_kill = time.monotonic()
            os.kill(v.pid, sig)
            while obs.next_state()["mode"] != "stopped":
                continue
            ev = obs.request("stats")["watchdog"][n0:]
            silent.append(ev[0]["silent"] - ev[0]["stalled"])
            reaction.append(ev[0]["at"] - t_kill)
            causes.update(e["cause"] for e in ev)
            v.kill()
            v.wait(timeout=10)
            _clear(obs)
    finally:
        obs.close()
    s = np.asarray(silent)
    within = int(np.sum(s <= DEADLINE + 0.010))
    name = "SIGKILL" if sig == signal.SIGKILL else "SIGSTOP"
    row = (f"| {trials} × {name} mid-motion, {channel} ({', '.join(sorted(causes))}) | heard nothing for "
           f"(silent − stalled): min {s.min() * 1e3:.1f}, p50 {np.median(s) * 1e3:.1f}, p99 {pct(s, 99) * 1e3:.1f}, "
           f"max {s.max() * 1e3:.1f} ms | **{within}/{trials} within {(DEADLINE + 0.010) * 1e3:.0f} ms** | "
           f"{name.lower()} → stop command (server clock): p50 {np.median(reaction) * 1e3:.1f} ms, "
           f"max {max(reaction) * 1e3:.1f} ms |")
    print(row, flush=True)
    return row


def bench_busy(ep: str, motions: int, servo: float, channel: str, deadline: float) -> str:
    obs = Connection(ep, timeout=5.0)
    try:
        stats0 = obs.request("stats")
        n0 = len(stats0["watchdog"])
    finally:
        obs.close()
    extra = ["--heartbeat"] if channel == "heartbeat" else []
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tests.hardware.busy_client", str(CELL), ep, "--motions",
                           str(motions), "--servo", str(servo), "--burst", "0.2", *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=3600)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    rep: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    obs = Connection(ep, timeout=5.0)
    try:
        st = obs.request("stats")
        if obs.state()["mode"] == "stopped":
            _clear(obs)
    finally:
        obs.close()
    events = st["watchdog"][n0:]
    stops = len(events)
    kinds: dict[str, int] = {}
    first: dict[str, str] = {}
    for e in rep["motion_errors"] + rep["servo_errors"]:
        kind = e.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
        first.setdefault(kind, e[:300])
    print(f"  errors met by the client: {kinds or 'none'}", flush=True)
    for kind, text in first.items():
        print(f"    first {kind}: {text}", flush=True)
    row = (f"| busy client, {channel}, deadline {deadline * 1e3:.0f} ms: {motions} motions + {servo:g} s of "
           "250 Hz servo, 200 ms bursts | "
           f"**{stops} false stop(s)** ({', '.join(e['cause'] for e in events) or 'none'}) | "
           f"motions completed {rep['completed']}/{rep['motions']}, setpoints sent {rep['setpoints']} "
           f"(longest gap between them {rep['max_gap'] * 1e3:.0f} ms), servo errors {len(rep['servo_errors'])}, "
           f"resets {rep['resets']} | longest liveness silence while moving "
           f"{st['liveness']['silence_max'] * 1e3:.0f} ms; server tick max {st['tick_max'] * 1e3:.0f} ms | "
           f"{wall:.0f} s |")
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer trials, shorter runs (a smoke run)")
    ap.add_argument("--deadlines", type=float, nargs="+", default=[DEADLINE, 0.1],
                    help="liveness and watchdog deadlines (s) to run the busy client against")
    ap.add_argument("--skip-kills", action="store_true", help="only the busy-client runs")
    ap.add_argument("--skip-busy", action="store_true", help="only the kill and freeze trials")
    a = ap.parse_args()
    kills = 5 if a.quick else 50
    stops = 5 if a.quick else 20
    motions, servo = (10, 5.0) if a.quick else (200, 60.0)
    base_motions, base_servo = (10, 5.0) if a.quick else (50, 15.0)
    print(f"load average before: {os.getloadavg()}")
    srv = ServerProcess(CELL, cwd=ROOT).start(timeout=90.0)  # default deadlines: watchdog, liveness, lease
    try:
        print("| trials | last message → stop command | within deadline + 10 ms | kill → stop |")
        print("|---|---|---|---|")
        if not a.skip_kills:
            bench_kill(srv.endpoint, kills, "heartbeat", signal.SIGKILL)
            bench_kill(srv.endpoint, kills, "liveness", signal.SIGKILL)
            bench_kill(srv.endpoint, stops, "liveness", signal.SIGSTOP)
    finally:
        srv.stop()
    if a.skip_busy:
        print(f"load average after: {os.getloadavg()}")
        return
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        print(f"two CPU-bound processes: pids {[h.pid for h in hogs]}; load average {os.getloadavg()}")
        print("| run | false stops | client | margin | wall |")
        print("|---|---|---|---|---|")
        for deadline in a.deadlines:
            d = str(deadline)
            srv = ServerProcess(CELL, "--liveness", d, "--watchdog", d, cwd=ROOT).start(timeout=90.0)
            try:
                bench_busy(srv.endpoint, motions, servo, "liveness", deadline)
                bench_busy(srv.endpoint, base_motions, base_servo, "heartbeat", deadline)
            finally:
                srv.stop()
            print(f"load average: {os.getloadavg()}", flush=True)
    finally:
        for h in hogs:
            h.kill()
            h.wait(timeout=10)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
