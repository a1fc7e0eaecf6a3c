"""The operations that must run on the control loop, at the start of a tick (both control modes).

``--control thread``: the command thread's handlers (``ops.py``) run them through
``ControlLoop.run``. ``--control process``: the command process names them on the link and
the control process (``control_main.py``) runs them on its loop. One implementation, so both
modes check and change exactly the same things. Each takes the loop (and the tick's time and
driver state) and returns a msgpack-able result or raises :class:`WireError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from robocell.hardware.control import ControlLoop
from robocell.hardware.driver import DriverState
from robocell.hardware.executor import Motion, Status
from robocell.hardware.protocol import Code, WireError
from robocell.hardware.servojudge import ServoJudge


class ArmView(Protocol):
    """What a handler may read about the arm before it asks the loop (the loop, or its copy in the
    command process, which lags by at most one state period: the loop checks again)."""

    @property
    def latched(self) -> bool: ...
    @property
    def hardware_faults(self) -> tuple[str, ...]: ...
    @property
    def fault_texts(self) -> list[str]: ...
    @property
    def moving_id(self) -> int | None: ...


def ready_to_move(view: ArmView, op: str) -> None:
    """Refuse a motion while the arm faults, is latched or moves (FAULT, STOPPED, BUSY)."""
    if view.hardware_faults:
        raise WireError(Code.FAULT, f"{op}: the driver reports a fault ({', '.join(view.hardware_faults)}); "
                                    "clear it on the robot, then reset")
    if view.latched:
        raise WireError(Code.STOPPED, f"{op}: the arm is in a latched protective stop "
                                      f"({'; '.join(view.fault_texts)}); send reset before moving")
    mid = view.moving_id
    if mid is not None:
        raise WireError(Code.BUSY, f"{op}: the arm is executing motion {mid if mid >= 0 else '?'}; "
                                   "wait for it or stop it first")


def start(loop: ControlLoop, judge: ServoJudge, now: float, motion: Motion, op: str) -> None:
    ready_to_move(loop, op)  # again: a stop may have come in while the motion was planned
    loop.start_motion(motion, now)
    judge.forget()


def release(loop: ControlLoop, judge: ServoJudge) -> bool:
    m = loop.executor.motion
    if m is not None and m.status is Status.RUNNING:
        # a trajectory needs its holder until it ends; refusing changes nothing
        raise WireError(Code.BUSY, f"lease_release: motion {m.id} is running and needs its controlling "
                                   "client until it ends; wait for it (or send stop) before releasing "
                                   "the lease; nothing was released")
    ended = loop.end_servo("the lease was released")
    loop.keeper.release()
    judge.forget()
    return ended


def reset(loop: ControlLoop, judge: ServoJudge, st: DriverState) -> None:
    if loop.executor.stopping is not None:
        raise WireError(Code.BUSY, "reset: the arm is still decelerating; retry when mode is 'stopped' "
                                   "and the joints are at rest")
    if st.faults:
        raise WireError(Code.FAULT, f"reset: the driver still reports {', '.join(st.faults)}; "
                                    "clear it on the robot first")
    loop.faults.clear()
    loop.executor.hold_here(loop.executor.q_cmd)
    judge.forget()


def servo_end(loop: ControlLoop, judge: ServoJudge) -> tuple[bool, int]:
    ended = loop.end_servo("servo_end from the client")
    judge.forget()  # a new stream starts from where the arm is
    return ended, loop.executor.last_servo_seq


def servo_ready(loop: ControlLoop) -> None:
    """Refuse a setpoint while the arm faults, is latched, or a motion (or a stop) runs."""
    if loop.latched or loop.hardware_faults:
        ready_to_move(loop, "servo")
    m = loop.executor.motion
    if loop.executor.stopping is not None or (m is not None and m.status is Status.RUNNING):
        raise WireError(Code.BUSY, "servo: a motion is running; stop it (or wait) before streaming setpoints")


def servo(loop: ControlLoop, judge: ServoJudge, seq: int, q: np.ndarray, dt: float, t_recv: float) -> None:
    """(Control process.) Check and apply one setpoint on the loop itself."""
    servo_ready(loop)
    velocity = judge.judge(q, dt, t_recv, loop.executor.q_cmd.copy(), np.asarray(loop.q_meas, dtype=float))
    loop.executor.servo(seq, q, velocity, dt, t_recv)


def gripper(loop: ControlLoop, width: float | None, force: float | None) -> int:
    if loop.latched:
        raise WireError(Code.STOPPED, "gripper: the arm is in a latched protective stop; reset first")
    loop.driver.gripper(width, force)
    loop.gripper_seq += 1
    return loop.gripper_seq


def world(loop: ControlLoop) -> dict[str, Any]:
    drv = loop.driver
    held = getattr(drv, "held_object", None)
    return {"objects": {k: np.asarray(v).reshape(-1).tolist() for k, v in drv.object_poses().items()},
            "held": held() if callable(held) else None}


def motion(loop: ControlLoop, mid: int) -> dict[str, Any]:
    m = loop.motions.get(mid)
    if m is None:
        raise WireError(Code.BAD_FIELD, f"motion: no recent motion with id {mid}")
    return m.summary()


def control_stats(loop: ControlLoop) -> dict[str, Any]:
    """The loop's part of ``stats``."""
    iv = np.asarray(loop.stats.intervals, dtype=float)
    ss = loop.executor.servo_stats
    return {
        "ticks": loop.stats.ticks, "late_ticks": loop.stats.late_ticks,
        "tick_p50": float(np.percentile(iv, 50)) if iv.size else 0.0,
        "tick_p99": float(np.percentile(iv, 99)) if iv.size else 0.0,
        "tick_max": float(iv.max()) if iv.size else 0.0,
        "servo": {"received": ss.received, "applied_next_tick": ss.applied_next_tick,
                  "applied_late": ss.applied_late, "superseded": ss.superseded},
        "watchdog": [{"silent": e.silent, "stalled": e.stalled, "key": e.key, "cause": e.cause, "at": e.at}
                     for e in loop.stats.watchdog],
        "liveness": {"silence_max": loop.stats.liveness_silence_max},
    }


# (loop, judge, now, state, args) -> result: the calls a handler may name (ops.Ops._invoke, the link's `call`)
Call = Callable[[ControlLoop, ServoJudge, float, DriverState, dict[str, Any]], Any]
CALLS: dict[str, Call] = {
    "release": lambda c, j, now, st, a: release(c, j),
    "reset": lambda c, j, now, st, a: reset(c, j, st),
    "servo_end": lambda c, j, now, st, a: servo_end(c, j),
    "gripper": lambda c, j, now, st, a: gripper(c, a["width"], a["force"]),
    "world": lambda c, j, now, st, a: world(c),
    "ready": lambda c, j, now, st, a: ready_to_move(c, str(a["op"])),
    "q_cmd": lambda c, j, now, st, a: c.executor.q_cmd.tolist(),
    "motion": lambda c, j, now, st, a: motion(c, int(a["mid"])),
    "stats": lambda c, j, now, st, a: control_stats(c),
    "servo": lambda c, j, now, st, a: servo(c, j, int(a["seq"]), np.asarray(a["q"], dtype=float), float(a["dt"]),
                                            float(a["t_recv"])),
}
