"""The servo path's timing, judged in the server's own clock (ticks and simulated time), not the host's.

Deterministic: the executor is stepped by hand and the sim driver runs on a fake clock, so
these hold however loaded the machine is (the contract suite's servo test, which goes through
a real server, cannot tell a slow host from a slow tracker).
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from robocell.cellfile.spec import load_cell_spec
from robocell.hardware.drivers import sim as sim_driver
from robocell.hardware.executor import Executor
from robocell.motion.kinematics_setup import arm_parts

from tests.conftest import KUKA, TABLETOP

PERIOD = 0.001  # s: the sim driver's 1 kHz control tick


@pytest.mark.parametrize("path", [TABLETOP, KUKA], ids=["panda", "kuka"])
@pytest.mark.parametrize("ticks_apart", [4, 6, 9])
def test_servo_tracker_lands_on_the_last_setpoint_without_ringing(path: object, ticks_apart: int) -> None:
    """The contract test's stream (+2 mrad per setpoint, dt 4 ms) stopped abruptly.

    The arm cannot stop on the spot: passing the last setpoint by the braking distance
    v^2 / (2 a_max) is physics. Ringing around it is not: the tracker asked for err / tau,
    far more deceleration than max_accel near the target, and rang at ~5 Hz for half a second.
    """
    spec = load_cell_spec(path)
    _, _, safety = arm_parts(spec.arms[0])
    q0 = np.asarray(spec.arms[0].arm_model().home, dtype=float)
    ex = Executor(safety, q0.copy(), PERIOD, lambda *a: {})
    zero = np.zeros_like(q0)
    q = q0.copy()
    tick = 0
    for k in range(100):
        q_prev = q.copy()
        q[0] += 0.002
        ex.servo(k, q.copy(), (q - q_prev) / 0.004 if k else zero, 0.004, tick * PERIOD)
        for _ in range(ticks_apart):
            tick += 1
            ex.step(tick * PERIOD, ex.q_cmd, zero)
    v_end = abs(float(ex.v_cmd[0]))
    e_end = abs(float(ex.q_cmd[0] - q[0]))  # the stream's dt (4 ms) overstates its speed: the arm leads a little
    amax = float(safety.max_accel[0])
    errs = []
    for _ in range(1000):
        tick += 1
        ex.step(tick * PERIOD, ex.q_cmd, zero)
        errs.append(float(ex.q_cmd[0] - q[0]))
    e = np.asarray(errs)
    assert np.max(np.abs(e)) <= e_end + v_end ** 2 / (2 * amax) + 1e-4  # where it was, plus the braking distance
    big = e[np.abs(e) > 1e-4]
    assert np.count_nonzero(np.diff(np.sign(big))) <= 1, "the tracker rang around the last setpoint"
    settled = int(np.argmax(np.abs(e) < 1e-6))
    assert np.abs(e[settled]) < 1e-6 and np.all(np.abs(e[settled:]) < 1e-6)
    # stop, come back: twice the braking time from the stream's speed, and some slack
    assert settled * PERIOD <= 2.0 * (v_end / amax) + 2.0 * np.sqrt((e_end + 0.002) / amax) + 0.02
    assert np.all(np.abs(np.diff(e)) <= float(safety.max_speed[0]) * PERIOD * (1 + 1e-9))


def test_sim_driver_catch_up_reset_does_not_hold_newer_setpoints_back() -> None:
    """After a stall, the clock reset (MAX_CATCH_UP) must not leave a setpoint queued ahead of newer ones.

    Setpoints are stamped with the simulated time they belong to; when simulated time gives up
    catching up, it is moved back. Stamps from before the move were up to the whole lag ahead of
    the new clock: the oldest sat at the head of the FIFO and held every newer one back until
    simulated time reached it (the arm held a stale setpoint for up to the stall, then jumped).
    """
    clock = types.SimpleNamespace(t=1000.0)

    def sleep(s: float) -> None:
        clock.t += max(0.0, s)

    fake_time = types.SimpleNamespace(perf_counter=lambda: clock.t, sleep=sleep, monotonic=lambda: clock.t)
    real_time = sim_driver.time
    sim_driver.time = fake_time  # type: ignore[assignment]
    try:
        driver = sim_driver.SimDriver(load_cell_spec(TABLETOP), "panda")
        try:
            world = driver.world
            q0 = np.asarray(driver.read().q, dtype=float)
            zero = np.zeros_like(q0)

            def tick(q: np.ndarray) -> None:
                driver.command(q, zero)
                driver.wait_period()

            for _ in range(50):
                tick(q0)
            clock.t += 0.3  # the host descheduled the server for 300 ms
            target = q0.copy()
            target[0] += 0.05
            tick(target)  # stamped on the old clock; physics gives up catching up (MAX_CATCH_UP)
            lag = (driver._sim_start + (clock.t - driver._start)) - world.time
            assert abs(lag) < 2 * world.timestep  # the clock was reset
            newer = target.copy()
            for k in range(40):  # 40 ms at 1 kHz: the newest setpoint must be the one applied
                newer[0] = target[0] + 0.001 * (k + 1)
                tick(newer.copy())
            assert driver._applied is not None
            behind = newer[0] - driver._applied[1][0]  # rad; the stream adds 1 mrad per tick
            # physics steps at 240 Hz: the setpoint applied may be a step (~4 ticks) old, no more
            assert behind <= 0.001 * (world.timestep + PERIOD) / PERIOD + 1e-9, (
                f"the applied setpoint is {behind * 1000:.0f} mrad behind the newest: an old stamp holds the queue"
            )
        finally:
            driver.close()
    finally:
        sim_driver.time = real_time  # type: ignore[assignment]
