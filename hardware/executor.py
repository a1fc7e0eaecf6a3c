"""The server's motion executor: one joint setpoint per control tick.

Runs in the control thread only.  It turns the accepted command (a checked
trajectory, a stream of checked servo setpoints, or a stop) into the single
setpoint the driver gets each tick, and is where the last line of safety
lives: whatever happens upstream, consecutive setpoints never exceed the
envelope's joint speed or acceleration, never leave the joint limits, and a
stop is always a controlled deceleration.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robocell.motion.safety import SafetyEnvelope
from robocell.motion.trajectory import JointTrajectory, plan_stop

SETTLE_SPEED = 0.02  # rad/s: below this on every joint the arm counts as at rest
SETTLE_TIMEOUT = 1.0  # s after a trajectory ends before its motion is declared finished anyway
SERVO_TAU = 0.01  # s: the servo tracker closes a position error with this time constant
MAX_ADVANCE = 2  # periods a trajectory's clock advances per tick at most (a late tick slips, never jumps)


class Status(str, enum.Enum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass
class Motion:
    """A trajectory being executed; its result is filled in when it ends."""

    id: int
    traj: JointTrajectory
    q_goal: np.ndarray
    t0: float
    status: Status = Status.RUNNING
    result: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "duration": self.traj.duration, **self.result}


@dataclass
class ServoStats:
    received: int = 0
    applied_next_tick: int = 0  # became the tracker's target on the first tick after arrival
    applied_late: int = 0
    superseded: int = 0  # replaced by a newer setpoint before any tick applied it


class Executor:
    """Produces (q, qd) setpoints from the active command; owned by the control thread."""

    def __init__(self, safety: SafetyEnvelope, q0: np.ndarray, period: float,
                 result_fn: Callable[[np.ndarray, np.ndarray, float, bool], dict[str, Any]]) -> None:
        self.safety = safety
        self.period = period
        self.result_fn = result_fn
        self.q_cmd = q0.copy()
        self.v_cmd = np.zeros_like(q0)
        self.motion: Motion | None = None  # running or last finished
        self.stopping: JointTrajectory | None = None
        self.stop_t0 = 0.0
        self.servo_target: np.ndarray | None = None
        self.servo_velocity = np.zeros_like(q0)
        self.servo_seq = 0  # of the setpoint the tracker follows
        self._servo_pending: tuple[int, np.ndarray, np.ndarray, float] | None = None  # seq, q, v, arrival time
        self.servo_ending = False  # the stream ended: settle on the last setpoint, then idle
        self.servo_arrived = -np.inf  # monotonic arrival time of the newest setpoint (the setpoint deadline's clock)
        self.servo_dt = 0.0  # the newest setpoint's stream period (s)
        self._prev_now = -np.inf  # start time of the previous tick
        self.servo_stats = ServoStats()
        self._servo_applied = 0
        self._servo_ff_ticks = 1
        self.tick = 0

    # ---------------------------------------------------------------- commands
    @property
    def moving(self) -> bool:
        return (self.motion is not None and self.motion.status is Status.RUNNING) or self.stopping is not None

    @property
    def servoing(self) -> bool:
        return self.servo_target is not None

    def start(self, motion: Motion, now: float) -> None:
        self.servo_target = None
        self._servo_pending = None
        self.servo_ending = False
        motion.t0 = now
        self.motion = motion

    def servo(self, seq: int, q: np.ndarray, velocity: np.ndarray, dt: float, arrived: float) -> None:
        """Queue a checked setpoint; the next tick makes it the target.

        ``velocity`` is the stream's own speed (feed-forward); it is trusted for
        ``dt`` after the setpoint is applied, so a stream that stops does not
        carry the arm past its last setpoint.  ``arrived`` (monotonic s) is when
        the message reached the server: the statistics count a setpoint as
        applied on time if the first tick that started after it applied it.
        """
        if self._servo_pending is not None:
            self.servo_stats.superseded += 1
        self.servo_stats.received += 1
        self._servo_pending = (seq, q, velocity, arrived)
        self._servo_ff_ticks = max(1, int(round(dt / self.period)))
        self.servo_ending = False
        self.servo_arrived = arrived
        self.servo_dt = dt

    @property
    def last_servo_seq(self) -> int:
        """``seq`` of the newest accepted setpoint (applied, or applied at the next tick)."""
        return self._servo_pending[0] if self._servo_pending is not None else self.servo_seq

    def end_servo(self) -> bool:
        """End the stream: no feed-forward any more, settle on the last setpoint, then idle.

        A setpoint that arrived but was not applied yet is still applied (it was accepted).
        Returns False if there was no stream to end.
        """
        if self.servo_ending or (self.servo_target is None and self._servo_pending is None):
            return False
        self.servo_ending = True
        return True

    def stop(self, q: np.ndarray, now: float) -> Motion | None:
        """Decelerate from the commanded state; returns the motion it cancelled, if any."""
        cancelled = None
        if self.motion is not None and self.motion.status is Status.RUNNING:
            # result before status: other threads read a finished motion's result without a lock
            self.motion.result = self.result_fn(self.motion.q_goal, q, now - self.motion.t0, False)
            self.motion.status = Status.CANCELLED
            cancelled = self.motion
        self.servo_target = None
        self._servo_pending = None
        self.servo_ending = False
        self.stopping = plan_stop(self.q_cmd, self.v_cmd, self.safety.max_accel)
        self.stop_t0 = now
        return cancelled

    # ---------------------------------------------------------------- the tick
    def step(self, now: float, q_meas: np.ndarray, qd_meas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The setpoint for this tick (call once per control period)."""
        self.tick += 1
        prev_now, self._prev_now = self._prev_now, now
        self._slip(now - prev_now - MAX_ADVANCE * self.period, prev_now)
        if self.stopping is not None:
            q, qd = self.stopping.sample(now - self.stop_t0)
            if now - self.stop_t0 >= self.stopping.duration:
                self.stopping = None
                qd = np.zeros_like(q)
            return self._emit(q, qd)
        m = self.motion
        if m is not None and m.status is Status.RUNNING:
            elapsed = now - m.t0
            if elapsed <= m.traj.duration:
                q, qd = m.traj.sample(elapsed)
                return self._emit(q, qd)
            at_rest = float(np.max(np.abs(qd_meas))) < SETTLE_SPEED
            close = float(np.max(np.abs(q_meas - m.q_goal))) < 0.0025
            if (at_rest and close) or elapsed > m.traj.duration + SETTLE_TIMEOUT:
                m.result = self.result_fn(m.q_goal, q_meas, elapsed, True)
                m.status = Status.DONE
            return self._emit(m.q_goal, np.zeros_like(m.q_goal))
        if self._servo_pending is not None:
            seq, q, v, arrived = self._servo_pending
            self._servo_pending = None
            if arrived > prev_now:  # it arrived during the previous period: this is the next tick
                self.servo_stats.applied_next_tick += 1
            else:
                self.servo_stats.applied_late += 1
            self.servo_target, self.servo_velocity, self.servo_seq = q, v, seq
            self._servo_applied = self.tick
        if self.servo_target is not None:
            if self.servo_ending or self.tick - self._servo_applied >= self._servo_ff_ticks:
                self.servo_velocity = np.zeros_like(self.servo_velocity)
            if self.servo_ending and self._settled(self.servo_target):
                self.servo_target = None  # the stream is over: idle, holding the last setpoint
                self.servo_ending = False
                return self._emit(self.q_cmd, np.zeros_like(self.q_cmd))
            return self._track()
        return self._emit(self.q_cmd, np.zeros_like(self.q_cmd))

    def _settled(self, target: np.ndarray) -> bool:
        # the tracker lands exactly on the target (see _track), and one tick later v_cmd is zero
        return bool(np.all(np.abs(target - self.q_cmd) < 1e-9) and np.all(np.abs(self.v_cmd) < 1e-9))

    def _slip(self, late: float, prev_now: float) -> None:
        """After a late tick, resume the running trajectory where it was instead of jumping ahead.

        ``late`` is how much more than ``MAX_ADVANCE`` periods passed since the previous
        tick (the host descheduled the control thread): no setpoint went out meanwhile, and
        the arm held the last one.  Sampling the
        trajectory at ``now`` would then ask for the whole stall's worth of travel in one
        period, (stall / period) times the planned speed.  Shifting the start instead keeps
        consecutive setpoints within the speed and acceleration limits; the motion (or the
        stop) ends that much later.  Motions and stops started on this tick are on time.
        """
        if late <= 0.0:
            return
        if self.stopping is not None and self.stop_t0 <= prev_now:
            self.stop_t0 += late
        m = self.motion
        if m is not None and m.status is Status.RUNNING and m.t0 <= prev_now:
            m.t0 += late

    def _track(self) -> tuple[np.ndarray, np.ndarray]:
        """Follow the latest servo setpoint within the speed and acceleration limits.

        A stream that starts from rest or stops abruptly would ask for an
        unbounded acceleration; the tracker ramps instead, and brakes early
        enough never to pass a joint limit.
        """
        assert self.servo_target is not None
        dt = self.period
        vmax, amax = self.safety.max_speed, self.safety.max_accel
        err = self.servo_target - self.q_cmd
        # close the error at most as fast as the arm can still brake to a stop on the target:
        # err / tau alone asks for far more deceleration than max_accel near the target, so
        # the arm overshot the last setpoint and rang around it (~0.2 s period, slowly damped)
        v_close = np.minimum(np.abs(err) / max(SERVO_TAU, dt), _braking_speed(np.abs(err), amax, dt))
        v_des = self.servo_velocity + np.sign(err) * v_close
        # braking distance to each joint limit in the direction of travel
        room = np.where(v_des > 0, self.safety.upper - self.q_cmd, self.q_cmd - self.safety.lower)
        v_brake = _braking_speed(np.maximum(room, 0.0), amax, dt)
        v_des = np.clip(v_des, -np.minimum(vmax, v_brake), np.minimum(vmax, v_brake))
        dv = np.clip(v_des - self.v_cmd, -amax * dt, amax * dt)
        v = self.v_cmd + dv
        q = np.clip(self.q_cmd + v * dt, self.safety.lower, self.safety.upper)
        # near the target, land exactly rather than dither around it
        done = (np.abs(err) < 1e-6) & (np.abs(self.servo_velocity) < 1e-9)
        q = np.where(done, self.servo_target, q)
        v = np.where(done, 0.0, v)
        return self._emit(q, v)

    def _emit(self, q: np.ndarray, qd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.v_cmd = (q - self.q_cmd) / self.period if self.tick > 1 else np.zeros_like(q)
        self.q_cmd = np.asarray(q, dtype=float)
        return self.q_cmd, np.asarray(qd, dtype=float)

    def hold_here(self, q: np.ndarray) -> None:
        """Forget any command and hold ``q`` (after a reset or at start-up)."""
        self.motion = None if self.motion is None or self.motion.status is Status.RUNNING else self.motion
        self.stopping = None
        self.servo_target = None
        self._servo_pending = None
        self.servo_ending = False
        self.q_cmd = q.copy()
        self.v_cmd = np.zeros_like(q)


def _braking_speed(dist: np.ndarray, amax: np.ndarray, dt: float) -> np.ndarray:
    """The highest speed from which per-tick decelerations of ``amax * dt`` stop within ``dist``.

    Braking from ``n * amax * dt`` covers ``amax * dt**2 * n * (n + 1) / 2``; this is that
    relation solved for the speed (the continuous ``sqrt(2 * amax * dist)`` less half a tick's
    change, so the discrete tracker does not overrun by a tick's travel).
    """
    step = amax * dt
    return step * (np.sqrt(0.25 + 2.0 * dist / (step * dt)) - 0.5)
