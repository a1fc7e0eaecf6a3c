"""The watchdog on a control loop that is late on every tick (in-process, a fake driver)."""

from __future__ import annotations

import threading
import time

import numpy as np

from robocell.cellfile.spec import load_cell_spec
from robocell.hardware.control import ControlLoop, Lease
from robocell.hardware.executor import Motion
from robocell.motion.kinematics_setup import arm_parts
from robocell.motion.trajectory import plan_joint_move

from tests.conftest import TABLETOP
from tests.hardware.fakedriver import FollowingDriver

WATCHDOG = 0.05


def test_a_loop_late_on_every_tick_still_stops_a_silent_client() -> None:
    # The stall grace (time for the command thread to read what arrived during a stall) was
    # renewed by every late tick: a loop ticking at 400 Hz instead of 1 kHz never fired at all.
    model, kin, safety = arm_parts(load_cell_spec(TABLETOP).arms[0])
    home = np.asarray(model.home, dtype=float)
    stopped = threading.Event()
    lease = Lease("token", "client", time.monotonic())
    # asks for 1 kHz but its wait_period takes 2.5 ms: every tick is a late tick
    driver = FollowingDriver(tuple(kin.joint_names), safety.lower, safety.upper, home, pace=0.0025)
    loop = ControlLoop(driver, kin, safety,
                       np.eye(4), lambda data: None, 250.0, WATCHDOG, lease,
                       lambda kind, text: stopped.set() if kind == "stop" else None, lease_timeout=10.0)
    loop.start()
    try:
        goal = home.copy()
        goal[0] += 1.0
        motion = Motion(1, plan_joint_move(home, goal, safety.max_speed, safety.max_accel), goal, 0.0)
        loop.call(lambda now, st: loop.start_motion(motion, now)).result(timeout=5.0)
        lease.last_heard = time.monotonic()  # the client's last message; silence from here
        assert stopped.wait(timeout=2.0), "the watchdog never stopped the arm"
        ev = loop.stats.watchdog[0]
        assert loop.stats.late_ticks >= 0.9 * loop.stats.ticks  # the loop really was late throughout
        assert ev.silent - ev.stalled <= WATCHDOG + 0.010, ev
    finally:
        loop.close()
