"""The server's control thread: driver I/O, executor, watchdog and the state stream.

Only this thread touches the driver and the PUB socket.  Other threads hand
it work through :meth:`ControlLoop.call` (run at the start of the next tick)
and read :attr:`ControlLoop.latest` (the state built on the last tick, a
reference swapped atomically).  Each tick: read the driver, run queued calls,
check the watchdog and faults, compute one setpoint, send it, publish state
when due, wait for the next period.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import numpy as np

from robocell.core.arm import Mode
from robocell.hardware.bounds import MAX_FAULTS
from robocell.hardware.controlstats import TICK_HISTORY, ControlStats, StallLog, WatchdogEvent
from robocell.hardware.driver import Driver, DriverState
from robocell.hardware.executor import Executor, Motion, Status
from robocell.hardware.faults import LatchedFaults
from robocell.hardware.lease import Lease, LeaseKeeper, Lost
from robocell.hardware.protocol import VERSION, Code, WireError, pack
from robocell.hardware.telemetry import FIELD, TELEMETRY_PERIOD, WINDOWS_KEPT, TickWindow, with_field
from robocell.motion.kinematics import Kinematics
from robocell.motion.safety import SafetyEnvelope

T = TypeVar("T")
STALL_GRACE = 0.005  # s after a late tick before the watchdog judges silence again (once per silence)

__all__ = ["TICK_HISTORY", "ControlLoop", "ControlStats", "Lease", "WatchdogEvent"]


class ControlLoop:
    def __init__(self, driver: Driver, kinematics: Kinematics, safety: SafetyEnvelope, base: np.ndarray,
                 publish: Callable[[bytes], None], state_rate: float, watchdog: float, lease: Lease,
                 on_event: Callable[[str, str], None], lease_timeout: float = 1.0,
                 telemetry_period: float = TELEMETRY_PERIOD, *, servo_timeout: float = 0.2,
                 keeper: LeaseKeeper | None = None) -> None:
        self.driver = driver
        self.kin = kinematics
        self.safety = safety
        self.base = base  # 4x4 arm base in world
        self.publish = publish
        self.state_period = 1.0 / state_rate
        self.watchdog = watchdog
        self.lease = lease
        self.lease_timeout = lease_timeout
        self.servo_timeout = servo_timeout
        self.keeper = keeper if keeper is not None else LeaseKeeper(lease, lease_timeout, on_event)
        self.on_event = on_event  # (kind, text) -> audit
        self.period = 1.0 / driver.info.control_rate
        st = driver.read()
        self.executor = Executor(safety, np.asarray(st.q, dtype=float), self.period, self._result)
        self.faults = LatchedFaults(MAX_FAULTS)  # latched, counted, bounded; cleared by reset
        self.hardware_faults: tuple[str, ...] = ()
        self.motions: collections.OrderedDict[int, Motion] = collections.OrderedDict()
        self.gripper_seq = 0
        self.seq = 0
        self.stats = ControlStats()
        self.latest: dict[str, Any] = {}
        self.q_meas = np.asarray(st.q, dtype=float)
        self._inbox: collections.deque[tuple[Callable[[float, DriverState], Any], Future[Any] | None]] = collections.deque()
        self._stop_requests: collections.deque[str] = collections.deque()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._grace_until = 0.0
        self._grace_for: float | None = None  # the silence (lease.last_heard) the grace was given for
        self._last_late = -float("inf")  # monotonic time of the latest late tick
        self.stalls = StallLog()
        self.failure: BaseException | None = None
        # telemetry (robocell.hardware.telemetry): windows closed here, summarised on another thread
        self.telemetry_period = telemetry_period
        self.window = TickWindow(time.monotonic())
        self.windows: collections.deque[TickWindow] = collections.deque(maxlen=WINDOWS_KEPT)
        self.window_ready = threading.Event()
        # packed telemetry waiting for the next published state (deque: append and popleft are atomic)
        self._telemetry: collections.deque[bytes] = collections.deque(maxlen=1)
        self.native_id: int | None = None  # the control thread's id, for its scheduling policy
        # called first in every tick, on this thread (the control process reads its sockets there)
        self.on_tick: Callable[[float, DriverState], None] | None = None
        self._build_state(time.monotonic(), st)

    # ---------------------------------------------------------------- API for other threads
    def call(self, fn: Callable[[float, DriverState], T]) -> Future[T]:
        """Run ``fn(now, state)`` on the control thread at the start of the next tick."""
        fut: Future[T] = Future()
        if self.failure is not None:
            fut.set_exception(RuntimeError(f"the control loop has failed: {self.failure}"))
            return fut
        self._inbox.append((fn, fut))
        return fut

    def run(self, fn: Callable[[float, DriverState], T], timeout: float) -> T:
        """:meth:`call` and wait for the result; BUSY (nothing done) if the loop did not take it in time."""
        fut = self.call(fn)
        try:
            return fut.result(timeout=timeout)
        except FutureTimeout:
            if fut.cancel():  # not started: it never will be, so nothing changed
                raise WireError(Code.BUSY, f"the control loop did not take the command within {timeout:.1f} s "
                                           "(the server is overloaded or stalled); nothing was done, retry") from None
            return fut.result()  # it started meanwhile: it finishes within a tick

    def post(self, fn: Callable[[float, DriverState], Any]) -> None:
        """Like :meth:`call` without a result (cheaper: the servo stream's path)."""
        self._inbox.append((fn, None))

    def request_stop(self, reason: str) -> None:
        """Stop with deceleration at the next tick; never queued behind other calls."""
        self._stop_requests.append(reason)

    @property
    def alive(self) -> bool:
        """True while the control thread runs (the server's supervisor checks it)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def latched(self) -> bool:
        return bool(self.faults)

    def mode(self) -> Mode:
        if self.hardware_faults:
            return Mode.FAULT
        if self.faults:
            return Mode.STOPPED
        if self.executor.moving:
            return Mode.MOVING
        if self.executor.servoing:
            return Mode.SERVO
        return Mode.IDLE

    def start(self) -> None:
        self._running.set()
        self._thread = threading.Thread(target=self._run, name="robocell-control", daemon=True)
        self._thread.start()

    def run_here(self) -> None:
        """Run the loop on the calling thread until :meth:`close` (the control process's main thread)."""
        self._running.set()
        self._run()

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    # ---------------------------------------------------------------- what a handler may read (linkops.ArmView)
    @property
    def fault_texts(self) -> list[str]:
        return list(self.faults.texts())

    @property
    def moving_id(self) -> int | None:
        """The running motion's id (-1 if unknown) while the executor moves, else None."""
        if not self.executor.moving:
            return None
        m = self.executor.motion
        return m.id if m is not None else -1

    def heard(self, t: float) -> None:
        """The holder was heard on the command socket at ``t``: the shared lease has it already."""

    # ---------------------------------------------------------------- the loop
    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        last = time.monotonic()
        next_pub = last
        self.window = TickWindow(last)
        try:
            while self._running.is_set():
                st = self.driver.read()
                now = time.monotonic()
                self._account(now - last, now)
                last = now
                self.q_meas = np.asarray(st.q, dtype=float)
                if self.on_tick is not None:
                    self.on_tick(now, st)
                if self._stop_requests:
                    self._requested_stops(now, st)
                self._watch(now, st)
                while self._inbox:
                    fn, fut = self._inbox.popleft()
                    if fut is None:
                        fn(now, st)
                    elif fut.set_running_or_notify_cancel():
                        try:
                            fut.set_result(fn(now, st))
                        except Exception as exc:  # noqa: BLE001 - handed to the caller via the future
                            fut.set_exception(exc)
                q, qd = self.executor.step(now, self.q_meas, np.asarray(st.qd, dtype=float))
                self.driver.command(q, qd)
                self._build_state(now, st)
                if now >= next_pub:
                    self.publish(self._with_telemetry() if self._telemetry else self.latest_packed)
                    next_pub = max(next_pub + self.state_period, now - self.state_period)
                self.driver.wait_period()
        except Exception as exc:  # noqa: BLE001 - the arm must be stopped whatever failed
            self.failure = exc
            print(f"robocell serve: control loop failed, stopping the arm: {exc!r}", file=sys.stderr)
            self.on_event("fault", f"control loop failed: {exc!r}")
            try:
                self.driver.stop()
            finally:
                while self._inbox:
                    _, fut = self._inbox.popleft()
                    if fut is not None:
                        fut.set_exception(RuntimeError(f"the control loop has failed: {exc!r}"))

    def _account(self, interval: float, now: float) -> None:
        s = self.stats
        s.ticks += 1
        s.intervals.append(interval)
        late = interval > 2.0 * self.period
        self._account_window(interval, now, late)
        if late:
            s.late_ticks += 1
            self.stalls.add(now, interval - self.period)
            # The whole server process stalled (host, GC): messages that arrived meanwhile are
            # still unread, so silence cannot be judged until the command thread catches up.
            self._last_late = now

    def _account_window(self, interval: float, now: float, late: bool) -> None:
        """This tick in the telemetry window (cheap: the percentiles are the telemetry thread's job)."""
        lease = self.lease
        margin = None
        if lease.token is not None:
            # the command thread may have heard the holder after this tick began: silence is never negative
            margin = self.watchdog - max(0.0, now - lease.last_heard)
        w = self.window
        w.add(interval, late, margin, len(self._inbox))
        if now - w.t0 >= self.telemetry_period:
            w.t1 = now
            self.windows.append(w)
            self.window = TickWindow(now)
            self.window_ready.set()

    def attach_telemetry(self, packed: bytes) -> None:
        """(Any thread.) Publish ``packed`` inside the next state sent; a newer one replaces it."""
        self._telemetry.append(packed)

    def _with_telemetry(self) -> bytes:
        return with_field(self.latest_packed, len(self.latest), FIELD, self._telemetry.popleft())

    def _watch(self, now: float, st: DriverState) -> None:
        if st.faults and st.faults != self.hardware_faults:
            self._stop(now, st, "hardware fault: " + ", ".join(st.faults))
        self.hardware_faults = tuple(st.faults)
        lost = self.keeper.watch(now) or self._judge_liveness(now)
        if lost is not None:
            if self.armed:
                if lost.cause == "liveness":  # the pauses the judgement left out (see _judge_liveness)
                    stalled = self.stalls.stalled(now - lost.silent, now, self.keeper.liveness_interval)
                else:
                    stalled = self.stalls.stalled(now - lost.silent + self.lease_timeout, now)
                self.stats.watchdog.append(WatchdogEvent(lost.silent, now, lost.key, stalled, lost.cause))
                self._stop(now, st, lost.reason)
            return
        self._servo_deadline(now)
        if not self.armed or self.lease.bound:
            return  # nothing moves on the holder's behalf, or its liveness connection is its deadline
        silent = now - self.lease.last_heard
        if self.lease.token is not None and silent > self.watchdog:
            # Past the deadline right after a stall: give the command thread STALL_GRACE to read
            # what arrived meanwhile. Once per silence, from the stall: a loop that keeps ticking
            # late (every tick more than two periods apart) renewed the grace on every tick before,
            # and the watchdog never fired at all.
            if self._grace_for != self.lease.last_heard and now - self._last_late < STALL_GRACE:
                self._grace_for = self.lease.last_heard
                self._grace_until = self._last_late + STALL_GRACE
            if self._grace_for == self.lease.last_heard and now < self._grace_until:
                return
        if self.lease.token is None:
            # unreachable by the protocol (release refuses a running trajectory and ends a servo
            # stream; expiry is reported above), kept so that no path leaves the arm moving unowned
            self._watchdog_stop(now, st, "watchdog: the arm is moving but nobody holds the lease", "nobody",
                                silent, self.lease.last_heard + self.watchdog, "heartbeat")
        elif silent > self.watchdog:
            who = self.lease.key or "nobody"
            self._watchdog_stop(now, st, f"watchdog: no command or heartbeat from the controlling client ({who}) "
                                         f"for {silent * 1000:.0f} ms (limit {self.watchdog * 1000:.0f} ms)",
                                who, silent, self.lease.last_heard + self.watchdog, "heartbeat")

    def _judge_liveness(self, now: float) -> Lost | None:
        """A bound liveness connection whose bytes stopped: the deadline while the arm moves for its
        holder, ``lease_timeout`` otherwise (an idle lease need not go at the first hiccup).

        The silence is the kernel's (time since data arrived), so a stall of this process alone
        does not make a client look silent. A stall of the whole host (a VM descheduled) freezes
        the client too, and the kernel's clock runs on: the silence is counted in the server's own
        running time, without its pauses of a PING interval or more (shorter ones are jitter, and a
        loop late on every tick must not stretch the deadline). A dead client is then stopped at
        most one deadline after such a pause ends.
        """
        kernel = self.keeper.silence()
        if kernel is None:
            return None
        # Any command from the holder also shows it alive (a 250 Hz servo stream, say): only both
        # channels silent count. A frozen or cut-off client is silent on both.
        silent = min(kernel, now - self.lease.last_heard)
        armed = self.armed
        if armed and kernel > self.stats.liveness_silence_max:
            self.stats.liveness_silence_max = kernel
        limit = self.keeper.liveness_deadline if armed else self.lease_timeout
        if silent <= limit:
            return None
        paused = self.stalls.stalled(now - silent, now, self.keeper.liveness_interval)
        if silent - paused <= limit:
            return None
        return self.keeper.drop_silent(now, silent)

    @property
    def armed(self) -> bool:
        """Whether the holder's absence must stop the arm: a trajectory runs, or a servo stream is live.

        A stream that is ending (its setpoint deadline passed, or it was ended) only settles onto
        its last, checked setpoint: like a stop's deceleration, that needs nobody.
        """
        ex = self.executor
        running = ex.motion is not None and ex.motion.status is Status.RUNNING
        return not self.faults and (running or (ex.servoing and not ex.servo_ending))

    def _watchdog_stop(self, now: float, st: DriverState, reason: str, key: str, silent: float, deadline: float,
                       cause: str) -> None:
        stalled = self.stalls.stalled(deadline, now)
        self.stats.watchdog.append(WatchdogEvent(silent, now, key, stalled, cause))
        self._stop(now, st, reason)

    def _servo_deadline(self, now: float) -> None:
        """End a stream whose setpoints stopped: the tracker settles on the last one, then the mode is idle."""
        ex = self.executor
        if not ex.servoing or ex.servo_ending:
            return
        limit = max(self.servo_timeout, 2.0 * ex.servo_dt)
        quiet = now - ex.servo_arrived
        if quiet > limit:
            ex.end_servo()
            self.on_event("servo_timeout", f"servo stream ended: no setpoint for {quiet * 1000:.0f} ms (setpoint deadline "
                                   f"{limit * 1000:.0f} ms); the arm settles on setpoint {ex.last_servo_seq} and holds")

    def end_servo(self, why: str) -> bool:
        """End the servo stream now (control thread): True if there was one to end."""
        ex = self.executor
        if not ex.end_servo():
            return False
        self.on_event("servo", f"servo stream ended ({why}); the arm settles on setpoint {ex.last_servo_seq} "
                               "and holds")
        return True

    def _requested_stops(self, now: float, st: DriverState) -> None:
        """Every stop requested since the last tick, as one stop: each reason is counted in the
        fault list, the deceleration is planned once and the audit gets one line.

        Anyone may send stop: 20,000 of them once cost a deceleration plan and an audit line
        each on this thread, and ticks came up to 3 s apart.
        """
        first = self._stop_requests.popleft()
        more = 0
        while self._stop_requests:
            self.faults.add(self._stop_requests.popleft())
            more += 1
        self._stop(now, st, first + (f" (and {more} more stop request(s) in this tick, counted in the faults)"
                                      if more else ""), count_as=first)

    def _stop(self, now: float, st: DriverState, reason: str, count_as: str | None = None) -> None:
        cancelled = self.executor.stop(np.asarray(st.q, dtype=float), now)
        self.faults.add(reason if count_as is None else count_as)
        self.on_event("stop", reason + (f" (cancelled motion {cancelled.id})" if cancelled else ""))

    # ---------------------------------------------------------------- motions (control thread)
    def start_motion(self, motion: Motion, now: float) -> None:
        self.executor.start(motion, now)
        self.motions[motion.id] = motion
        while len(self.motions) > 64:
            self.motions.popitem(last=False)

    def _result(self, q_goal: np.ndarray, q_end: np.ndarray, duration: float, completed: bool) -> dict[str, Any]:
        goal = self.kin.fk(q_goal)
        end = self.kin.fk(q_end)
        pos, rot = self.kin.pose_error(goal, end)
        return {"joint_error": float(np.max(np.abs(q_end - q_goal))), "position_error": pos,
                "rotation_error": rot, "duration": duration, "completed": completed,
                "q_goal": q_goal.tolist(), "q_end": q_end.tolist()}

    # ---------------------------------------------------------------- state
    def _build_state(self, now: float, st: DriverState) -> None:
        ex = self.executor
        q = np.asarray(st.q, dtype=float)
        tcp = self.base @ self.kin.fk_matrix(q)
        m = ex.motion
        self.seq += 1
        self.latest = {
            "v": VERSION, "seq": self.seq, "t": now, "wall": time.time(), "tick": ex.tick,
            "q": q.tolist(), "qd": np.asarray(st.qd, dtype=float).tolist(), "q_cmd": ex.q_cmd.tolist(),
            "tcp": tcp.reshape(-1).tolist(), "mode": self.mode().value,
            "faults": [*self.hardware_faults, *self.faults.texts()],
            "fault_counts": [*(1 for _ in self.hardware_faults), *self.faults.counts()],
            "lease": self.lease.key if self.lease.token is not None else None,
            "motion": m.summary() if m is not None else None,
            "servo_seq": ex.servo_seq,
            "gripper": {"width": float(st.gripper_width), "grasped": bool(st.grasped),
                        "busy": bool(self.driver.gripper_busy()), "seq": self.gripper_seq},
        }
        self.latest_packed = pack(self.latest)  # shared by the state stream and the state request
