"""What the server's telemetry (docs/protocol.md §5b) costs, against baselines measured in the same run.

1. Per control tick: ``ControlLoop._account_window`` (the window's interval,
   late tick, watchdog margin and inbox depth) against packing the state map,
   which the loop already does on every tick; and as a share of a 1 ms period.
2. Once per window, on the telemetry thread: the summary of a 1 s window at
   1 kHz (percentiles of 1000 intervals) against the percentiles the ``stats``
   operation computes over the last 20 000 intervals on the command thread.
3. Once per published telemetry, on the control thread: splicing the packed
   telemetry into the packed state (``with_field``) against packing the state
   map again with the field.

Run: .venv/bin/python benchmarks/bench_telemetry.py [--quick]
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from collections.abc import Callable

import numpy as np

from robocell.hardware.control import TICK_HISTORY, ControlLoop, Lease
from robocell.hardware.protocol import pack
from robocell.hardware.telemetry import FIELD, TickWindow, tick_summary, with_field


def best_of(repeats: int, n: int, fn: Callable[[int], None]) -> float:
    """Seconds per call of the fastest of ``repeats`` runs of ``fn(n)`` (n calls each)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(n)
        best = min(best, (time.perf_counter() - t) / n)
    return best


STATE = {"v": 1, "seq": 1, "t": 1.0, "wall": 1.7e9, "tick": 1, "q": [0.1] * 7, "qd": [0.0] * 7, "q_cmd": [0.1] * 7,
         "tcp": [0.0] * 16, "mode": "idle", "faults": [], "lease": None, "motion": None, "servo_seq": 0,
         "gripper": {"width": 0.08, "grasped": False, "busy": False, "seq": 0}}  # a Panda's state map


def per_tick(n: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    intervals = (0.001 + rng.exponential(0.00005, n)).tolist()
    # the real method on a loop without a driver: only what _account_window reads is set
    loop = object.__new__(ControlLoop)
    loop.lease = Lease(token="t", key="k", last_heard=0.0)  # a lease held: the margin is computed
    loop.watchdog, loop.telemetry_period = 0.05, 1.0
    loop._inbox = collections.deque()
    loop.windows = collections.deque(maxlen=4)
    loop.window_ready = threading.Event()

    def telemetry(k: int) -> None:
        loop.window = TickWindow(0.0)
        now = 0.0
        for i in range(k):
            iv = intervals[i]
            now += iv
            loop._account_window(iv, now, iv > 0.002)

    def state_packing(k: int) -> None:  # what the loop already does on every tick
        for _ in range(k):
            pack(STATE)

    extra = best_of(repeats, n, telemetry)
    base = best_of(repeats, max(1, n // 10), state_packing)
    print(f"| per tick (control thread): telemetry window accounting | {extra * 1e9:.0f} ns | packing the state, "
          f"every tick already: {base * 1e9:.0f} ns | **{extra / base:.2f}×** | {100 * extra / 0.001:.3f} % of a "
          "1 ms period |")


def per_window(repeats: int) -> None:
    rng = np.random.default_rng(1)
    w = TickWindow(0.0)
    for iv in (0.001 + rng.exponential(0.00005, 1000)).tolist():
        w.add(iv, False, 0.04, 0)
    w.t1 = 1.0
    history: collections.deque[float] = collections.deque((0.001 + rng.exponential(0.00005, TICK_HISTORY)).tolist(),
                                                          maxlen=TICK_HISTORY)

    def summary(k: int) -> None:
        for _ in range(k):
            tick_summary(w)

    def stats(k: int) -> None:  # as ops.op_stats computes it
        for _ in range(k):
            iv = np.asarray(history, dtype=float)
            float(np.percentile(iv, 50)), float(np.percentile(iv, 99)), float(iv.max())

    a = best_of(repeats, 50, summary)
    b = best_of(repeats, 50, stats)
    print(f"| per window (telemetry thread): summary of 1000 ticks | {a * 1e6:.0f} µs | `stats` over "
          f"{TICK_HISTORY} ticks (command thread): {b * 1e6:.0f} µs | **{a / b:.2f}×** | once a second |")


def per_publication(repeats: int) -> None:
    state = STATE
    tel = {"n": 1, "uptime": 1.0, "window": 1.0, "ticks": 1000, "queues": {"a": 1, "b": 2}, "messages": {"c": 3}}
    packed_state, packed_tel = pack(state), pack(tel)

    def splice(k: int) -> None:
        for _ in range(k):
            with_field(packed_state, len(state), FIELD, packed_tel)

    def repack(k: int) -> None:
        for _ in range(k):
            pack({**state, FIELD: tel})

    a, b = best_of(repeats, 2000, splice), best_of(repeats, 2000, repack)
    print(f"| per published telemetry (control thread): splice into the packed state | {a * 1e6:.2f} µs | "
          f"packing the state again with it: {b * 1e6:.2f} µs | **{a / b:.2f}×** | once a second |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer ticks and repeats (a smoke run)")
    args = ap.parse_args()
    n, repeats = (50_000, 3) if args.quick else (1_000_000, 7)
    print("| cost | telemetry | baseline (same run) | ratio | note |")
    print("|---|---|---|---|---|")
    per_tick(n, repeats)
    per_window(repeats)
    per_publication(repeats)


if __name__ == "__main__":
    main()
