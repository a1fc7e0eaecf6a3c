"""How a streamed servo setpoint is judged before the executor sees it.

One judge per server: the command thread's ``op_servo`` uses it in ``--control thread`` mode,
the control process (``robocell.hardware.control_main``) in ``--control process`` mode, so
both modes refuse exactly the same setpoints. The judge remembers the stream's last accepted
setpoint; everything that moves the arm by other means (a motion, stop, reset, ``servo_end``,
a new lease) must :meth:`ServoJudge.forget` it.
"""

from __future__ import annotations

import numpy as np

from robocell.errors import SafetyViolation
from robocell.motion.kinematics import Kinematics
from robocell.motion.safety import SafetyEnvelope

SERVO_FRESH = 0.25  # s: an older previous setpoint is not the reference for the next one at the stream's dt
# s: a stream that resumes within this long after its last accepted setpoint may have moved on by
# as much as the speed limit allows over the time that passed (a server or network stall); after
# longer it is judged as a new stream, from where the arm is
SERVO_RESUME = 0.5


class ServoJudge:
    """Checks setpoints against the envelope and the stream's own history."""

    def __init__(self, safety: SafetyEnvelope, kin: Kinematics, base: np.ndarray) -> None:
        self.safety = safety
        self.kin = kin
        self.base = base
        self.last: tuple[np.ndarray, float] | None = None  # (q, receipt time) of the last accepted setpoint
        self.paid = 0.0  # receipt time of the stream's last setpoint that was on time (see judge)
        self.resumed = 0  # setpoints accepted against the time that passed since the last one (after a gap)

    def forget(self) -> None:
        """The arm was moved, stopped or reset by other means: the next setpoint starts a stream."""
        self.last = None

    def judge(self, q: np.ndarray, dt: float, t_recv: float, q_cmd: np.ndarray,
              q_meas: np.ndarray) -> np.ndarray:
        """Check ``q`` (received at ``t_recv``, streamed every ``dt`` s) and remember it; return the
        feed-forward velocity for the executor. Raises :class:`SafetyViolation`, remembering nothing."""
        sf = self.safety
        sf.check_joints(q, what="servo setpoint")
        sf.check_tcp((self.base @ self.kin.fk_matrix(q))[:3, 3], what="servo setpoint")
        last = self.last
        fresh = last is not None and t_recv - last[1] < SERVO_FRESH
        try:
            if last is not None and fresh:
                sf.check_step(last[0], q, dt)
            else:
                # A stream's first setpoint is judged from the commanded or the measured position,
                # whichever is nearer: a client starts from the state it reads, and an arm that
                # settled within tolerance (or lags under load) measures a few mrad off its command.
                # A stream that resumes after a pause may also be judged from its own last setpoint.
                refs = [q_cmd, q_meas] + ([last[0]] if last is not None else [])
                sf.check_step(min(refs, key=lambda r: float(np.max(np.abs(q - r)))), q, dt)
        except SafetyViolation:
            elapsed = t_recv - self.paid
            if last is None or elapsed > SERVO_RESUME:
                raise
            # The server (or the network) stalled while the client streamed on: its setpoints kept
            # moving at up to the speed limit, so this one may be up to max_speed x the stall from
            # the last accepted one. Judged at the stream's dt it would be refused, and so would
            # every later one (the last accepted setpoint stays the old one): the refusal cascade
            # of docs/realtime.md section 6. So it is judged over the time that actually passed
            # since the stream was last on time (`paid`: a setpoint that waited in a queue during
            # the stall was produced before it, and earns no time).
            # Safe: (1) the setpoint itself passed the envelope (joint limits, workspace) above;
            # (2) the stream's setpoints never move faster than max_speed measured on the server's
            # clock, and the jump is at most max_speed x SERVO_RESUME; a setpoint farther than the
            # stream could have gone is still refused; (3) the arm never jumps: the executor's
            # tracker ramps to the target within max_speed and max_accel and brakes before the
            # joint limits, with no feed-forward (velocity 0 below).
            sf.check_step(last[0], q, elapsed)
            self.resumed += 1
            fresh = False
            self.paid = t_recv
        else:
            if fresh or last is None:
                self.paid = t_recv
        velocity = (q - last[0]) / dt if fresh and last is not None else np.zeros_like(q)
        self.last = (q, t_recv)
        return velocity
