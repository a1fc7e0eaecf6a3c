"""A servo stream that goes on through a server stall is not refused afterwards (docs/realtime.md §6).

Before the fix: after a stall longer than SERVO_FRESH the next setpoint was judged from the
arm's position with the stream's dt, refused, and so was every later one (the last accepted
setpoint stayed the old one) until the stream happened to pass the arm again.
"""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from robocell.errors import SafetyViolation
from robocell.hardware.servojudge import SERVO_RESUME, ServoJudge
from robocell.hardware.spawn import ServerProcess
from robocell.motion.kinematics_setup import arm_parts
from robocell.cellfile.spec import load_cell_spec

from tests.conftest import TABLETOP
from tests.hardware.rawclient import RawClient

DT = 0.002  # s: the stream's period
SPEED = 0.3  # rad/s of joint 1 (limit 1.5)


@pytest.fixture
def judge() -> ServoJudge:
    spec = load_cell_spec(TABLETOP)
    model, kin, safety = arm_parts(spec.arms[0])
    return ServoJudge(safety, kin, np.asarray(spec.arms[0].base.se3().A, dtype=float))


def _home() -> np.ndarray:
    spec = load_cell_spec(TABLETOP)
    model, _, _ = arm_parts(spec.arms[0])
    return np.asarray(model.home, dtype=float)


def test_a_stream_resumed_after_a_stall_is_judged_over_the_time_that_passed(judge: ServoJudge) -> None:
    q0 = _home()
    step = np.r_[SPEED * DT, np.zeros(len(q0) - 1)]
    t = 100.0
    for k in range(50):
        judge.judge(q0 + k * step, DT, t + k * DT, q0 + k * step, q0 + k * step)
    q_arm = q0 + 49 * step  # the arm tracked the stream, then the server stalled 0.4 s
    # the setpoint in flight during the stall is read after it (it was produced before)
    judge.judge(q0 + 50 * step, DT, t + 0.45, q_arm, q_arm)
    # the client streamed on; every setpoint after the stall is accepted, none refused
    for k in range(250, 300):
        judge.judge(q0 + k * step, DT, t + 0.45 + (k - 249) * DT, q_arm, q_arm)
    assert judge.resumed == 1


def test_a_resumed_setpoint_farther_than_the_stream_could_go_is_refused(judge: ServoJudge) -> None:
    q0 = _home()
    judge.judge(q0, DT, 10.0, q0, q0)
    far = q0 + np.r_[1.5 * 0.4 * 1.2, np.zeros(len(q0) - 1)]  # 20 % over the speed limit across the gap
    with pytest.raises(SafetyViolation, match="rad/s"):
        judge.judge(far, DT, 10.4, q0, q0)
    assert judge.last is not None and judge.last[1] == 10.0  # nothing remembered


def test_after_a_long_pause_a_stream_starts_from_the_arm(judge: ServoJudge) -> None:
    q0 = _home()
    judge.judge(q0, DT, 10.0, q0, q0)
    q = q0 + np.r_[0.1, np.zeros(len(q0) - 1)]  # 0.1 rad: within max_speed x gap, but the gap is too long
    with pytest.raises(SafetyViolation, match="rad/s"):
        judge.judge(q, DT, 10.0 + SERVO_RESUME + 0.1, q0, q0)


@pytest.mark.timeout(120)
def test_sigstop_of_the_server_while_a_client_streams() -> None:
    """SIGSTOP the real server 0.4 s while a request/reply client streams; judged by the server's replies.

    The client sends the setpoint for the time it sends it and waits for each reply, so the
    first setpoint after the stall is 0.4 s of motion (0.12 rad) past the last accepted one.
    """
    with ServerProcess(TABLETOP, "--watchdog", "5", "--lease-timeout", "10", "--servo-timeout", "5",
                       "--liveness", "5", "--rate", "1e6") as srv:
        c = RawClient(srv.endpoint, timeout=10.0)
        try:
            c.acquire()
            q0 = np.asarray(c.call("state")["result"]["q_cmd"], dtype=float)
            proc = srv.proc
            assert proc is not None
            stall: dict[str, float] = {}

            def freeze() -> None:
                stall["t0"] = time.monotonic()
                proc.send_signal(signal.SIGSTOP)
                time.sleep(0.4)  # the fault's duration, not synchronisation
                proc.send_signal(signal.SIGCONT)
                stall["t1"] = time.monotonic()

            freezer = threading.Thread(target=freeze, daemon=True)
            replies: list[tuple[float, dict]] = []
            t0 = time.monotonic()
            seq = 0
            while not stall.get("t1") or time.monotonic() - stall["t1"] < 0.5:
                now = time.monotonic()
                if seq == 100:
                    freezer.start()
                seq += 1
                q = q0.copy()
                q[0] += SPEED * (now - t0)
                replies.append((now, c.call("servo", {"q": q.tolist(), "dt": DT, "seq": seq})))
                time.sleep(DT)  # the stream's pacing, not synchronisation
            freezer.join(timeout=5)
            refused = [r for _, r in replies if not r["ok"]]
            assert not refused, f"{len(refused)} of {len(replies)} setpoints refused, first: {refused[0]}"
            after = [r for t, r in replies if t > stall["t1"]]
            assert len(after) > 20  # the stream really went on after the stall
        finally:
            c.close()
