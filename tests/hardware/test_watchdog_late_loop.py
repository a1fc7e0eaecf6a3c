"""The watchdog on a control loop that is late on every tick (in-process, a fake driver)."""

from __future__ import annotations

import threading
import time

import numpy as np

from robocell.cellfile import load_cell_spec
from robocell.hardware.control import ControlLoop, Lease
from robocell.hardware.driver import DriverInfo, DriverState
from robocell.hardware.executor import Motion
from robocell.kinematics_setup import arm_parts
from robocell.trajectory import plan_joint_move

from tests.conftest import TABLETOP

WATCHDOG = 0.05


class _LateDriver:
    """Asks for 1 kHz but returns from wait_period after 2.5 ms: every tick is a late tick."""

    def __init__(self, names: tuple[str, ...], lower: np.ndarray, upper: np.ndarray, q: np.ndarray) -> None:
        self.info = DriverInfo(names, lower - 1.0, upper + 1.0, 1000.0)
        self.q = q.copy()

    def read(self) -> DriverState:
        return DriverState(q=self.q.copy(), qd=np.zeros_like(self.q))

    def command(self, q: np.ndarray, qd: np.ndarray) -> None:
        self.q = np.asarray(q, dtype=float).copy()

    def wait_period(self) -> None:
        time.sleep(0.0025)  # the driver's (too slow) pace, not synchronisation

    def gripper(self, width: float | None, force: float | None) -> None:
        pass

    def gripper_busy(self) -> bool:
        return False

    def stop(self) -> None:
        pass

    def object_poses(self) -> dict[str, np.ndarray]:
        return {}

    def close(self) -> None:
        pass


def test_a_loop_late_on_every_tick_still_stops_a_silent_client() -> None:
    # The stall grace (time for the command thread to read what arrived during a stall) was
    # renewed by every late tick: a loop ticking at 400 Hz instead of 1 kHz never fired at all.
    model, kin, safety = arm_parts(load_cell_spec(TABLETOP).arms[0])
    home = np.asarray(model.home, dtype=float)
    stopped = threading.Event()
    lease = Lease("token", "client", time.monotonic())
    loop = ControlLoop(_LateDriver(tuple(kin.joint_names), safety.lower, safety.upper, home), kin, safety,
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
