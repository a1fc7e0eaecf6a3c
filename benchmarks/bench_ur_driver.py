"""UR driver overhead per control tick, against the raw ur_rtde calls it makes.

At 500 Hz a tick has 2 ms for read() + command() + wait_period().  This
measures the driver's own cost: both loops run against the fake ur_rtde of
the tests (whose calls cost microseconds, so what is measured is robocell's
Python, not a network), interleaved in rounds so both see the same machine load.

* baseline: the SDK calls one tick needs, made directly (getActualQ, getActualQd,
  getActualTCPPose, the five state queries, servoJ, waitPeriod, initPeriod);
* driver: URDriver.read() / command() / wait_period(), gripper=none;
* driver+gripper: with the Robotiq client on a loopback fake URCap, status read
  at most every gripper_poll = 20 ms (each read is 4 socket round trips).

    python benchmarks/bench_ur_driver.py [--ticks 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake ur_rtde lives with the tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from robocell.cellfile.spec import load_cell_spec
    from robocell.hardware.drivers.ur import URDriver
    from tests.hardware.fake_ur import FakeConnections, FakeURCap

    spec = load_cell_spec(ROOT / "examples" / "cells" / "ur5e.yaml")
    q0 = np.array(spec.arm("ur5e").arm_model().home)

    def raw(n: int) -> float:
        fake = FakeConnections()
        c, r = fake.control("x"), fake.receive("x")
        t = c.initPeriod()
        t0 = time.perf_counter()
        for _ in range(n):
            r.getActualQ(), r.getActualQd(), r.getActualTCPPose()
            r.isEmergencyStopped(), r.isProtectiveStopped(), r.getSafetyMode(), r.getRobotMode()
            c.isProgramRunning()
            c.servoJ(q0.tolist(), 0.5, 0.5, 0.002, 0.1, 300.0)
            c.waitPeriod(t)
            t = c.initPeriod()
        return (time.perf_counter() - t0) / n

    def driver(n: int, gripper: bool) -> float:
        cap = FakeURCap() if gripper else None
        d = URDriver(spec, "ur5e", host="x", rtde=FakeConnections(urcap=cap),
                     gripper="robotiq" if gripper else "none", gripper_poll=0.02)
        try:
            zero = np.zeros(6)
            t0 = time.perf_counter()
            for _ in range(n):
                d.read()
                d.command(q0, zero)
                d.wait_period()
            return (time.perf_counter() - t0) / n
        finally:
            d.close()
            if cap is not None:
                cap.close()

    res: dict[str, list[float]] = {"raw": [], "driver": [], "driver+gripper": []}
    for _ in range(args.rounds):
        res["raw"].append(raw(args.ticks))
        res["driver"].append(driver(args.ticks, False))
        res["driver+gripper"].append(driver(args.ticks, True))
    med = {k: float(np.median(v)) for k, v in res.items()}
    # The fake's own cost (DH FK, servo integration) is in both; the difference is robocell's.
    print(f"{'loop':16s} {'us/tick':>9s} {'x raw':>7s} {'overhead us':>12s} {'overhead % of 2 ms':>19s}")
    for k, v in med.items():
        extra = v - med["raw"]
        print(f"{k:16s} {v * 1e6:9.1f} {v / med['raw']:7.2f} {extra * 1e6:12.1f} {extra / 0.002 * 100:18.1f}%")
    print(json.dumps({k: round(v * 1e6, 2) for k, v in med.items()} | {"ticks": args.ticks, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
