"""The figures of benchmarks/bench_control_path.py (issue 12) mean what docs/realtime.md says.

Synthetic tick and send records with known answers: a setpoint counts as applied at its next
tick only if the first tick starting at least the allowance after it was sent follows it (or a
newer one); late, lost and early-judged setpoints do not. The benchmark's command line refuses
bad options with exit code 2 and names them.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_control_path.py"
P = 0.001


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_control_path", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


def run(ticks: np.ndarray, applied: np.ndarray, sends: np.ndarray, allowance: float = 0.0002) -> dict:
    return bench.analyse(ticks, applied, np.zeros(len(ticks)), sends, 0, allowance)


def test_each_setpoint_applied_by_the_following_tick_is_on_time() -> None:
    ticks = 10.0 + P * np.arange(20)
    sends = ticks[:10] + 0.5 * P  # mid-period
    applied = np.concatenate([[0], np.arange(1, 11), np.full(9, 10)])  # tick i+1 applies seq i+1
    f = run(ticks, applied, sends)
    assert f["on_time"].all()
    assert np.allclose(f["latency"], 0.5 * P)
    assert f["never"] == 0


def test_a_setpoint_applied_one_tick_late_is_missed() -> None:
    ticks = 10.0 + P * np.arange(20)
    sends = ticks[:10] + 0.5 * P
    applied = np.concatenate([[0], np.arange(1, 11), np.full(9, 10)])
    applied[4] = 3  # seq 4 waited one more tick (a command thread that did not hand it over in time)
    f = run(ticks, applied, sends)
    assert f["on_time"].tolist() == [True, True, True, False, True, True, True, True, True, True]
    assert f["latency"][3] == pytest.approx(1.5 * P)


def test_a_setpoint_superseded_by_a_newer_one_in_the_same_period_is_on_time() -> None:
    ticks = 10.0 + P * np.arange(10)
    sends = np.array([ticks[2] + 0.3 * P, ticks[2] + 0.6 * P])  # the client sent two within one period
    applied = np.array([0, 0, 0, 2, 2, 2, 2, 2, 2, 2])  # the loop took the newest: latest value wins
    f = run(ticks, applied, sends)
    assert f["on_time"].all()


def test_the_allowance_moves_a_setpoint_sent_just_before_a_tick_to_the_tick_after() -> None:
    ticks = 10.0 + P * np.arange(10)
    sends = np.array([ticks[3] - 0.1 * P])  # 0.1 ms before tick 3: still in flight when it starts
    applied = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    assert run(ticks, applied, sends, allowance=0.0002)["on_time"].all()
    assert not run(ticks, applied, sends, allowance=0.0)["on_time"].any()  # judged at tick 3, it missed


def test_a_stalled_loop_counts_late_ticks_and_a_never_applied_setpoint() -> None:
    ticks = 10.0 + P * np.concatenate([np.arange(5), 10 + np.arange(5)])  # a 6 ms stall after tick 4
    sends = np.array([ticks[4] + 0.5 * P, ticks[-1] + 0.5 * P])  # the second is after the last tick
    applied = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    f = run(ticks, applied, sends)
    intervals = f["intervals"]
    assert int(np.sum(intervals > 2 * P)) == 0  # the stall is outside the stream's window...
    g = bench.analyse(ticks, applied, np.zeros(len(ticks)), np.array([ticks[0] + 0.5 * P, ticks[-1]]), 0, 0.0002)
    assert int(np.sum(g["intervals"] > 2 * P)) == 1  # ...and inside this one
    assert f["on_time"].tolist() == [True, False]  # the first tick after the stall applied it: next tick
    assert f["never"] == 1


def test_the_transport_floor_is_the_chance_of_a_perfect_loop_at_random_phase() -> None:
    sends = 10.0 + P * np.arange(4)
    delays = np.array([0.0001, 0.0002 + 0.5 * P, 0.0002 + 2 * P, np.nan])
    f = bench.floor(sends + delays, sends, 0, 0.0002)
    assert f["on_time"].tolist() == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert f["never"] == 1
    assert len(f["delay"]) == 3


@pytest.mark.parametrize(("args", "names"), [
    (["--seconds", "0"], "--seconds 0.0 is outside [1, 120] s"),
    (["--only", "A,Z"], "unknown alternative(s) Z"),
    (["--no-quiet"], "--no-quiet needs --load"),
    (["--allowance", "0.5"], "--allowance 0.5 s is outside [0, 0.001] s"),
])
def test_bad_options_exit_2_and_name_the_option(args: list[str], names: str) -> None:
    p = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert names in p.stderr
    assert "Traceback" not in p.stderr
