"""ArmServer: the safety authority between the network and one arm's driver.

Four threads, each owning its sockets (ZeroMQ sockets are not thread-safe):

- the **command thread** owns the ROUTER socket: it reads every request frame by frame
  (a multipart message longer than one data frame is discarded unread), bounds its size,
  rate and nesting, decodes and checks it, enforces the lease, answers duplicates from a
  per-client reply cache (exactly once), and handles stops first in every batch it reads.
  No input can end it: each message's handling is wrapped, and a bug becomes an
  ``INTERNAL`` reply (the arm is stopped) and an audit line;
- the **planner thread** (:mod:`robocell.hardware.planner`) plans and checks motions (IK,
  trajectories, the safety envelope) so a long plan never delays a stop or a servo setpoint;
- the **control thread** (:mod:`robocell.hardware.control`) owns the driver and the PUB socket;
- with keys, the **authenticator thread** (``zmq.auth``) answers the CURVE handshakes.

If any of them dies anyway, the server is never half-alive: :meth:`ArmServer.wait`
raises :class:`~robocell.errors.ServerFailure` naming it, after stopping the arm
(``robocell serve`` then exits with status 1 so a supervisor restarts it).
- the **telemetry thread** (:mod:`robocell.hardware.telemetry`) summarises the
  control loop's last second for the state stream, off the loop's critical path.

Whatever a client sends, the driver only ever sees setpoints that passed the
safety envelope and the executor's speed and acceleration limiter.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from robocell.cellfile.spec import CellSpec
from robocell.errors import ConfigError, RobocellError, ServerFailure
from robocell.hardware import ops
from robocell.hardware.audit import AuditLog
from robocell.hardware.bounds import (
    CACHE_AGE, CACHE_CLIENT_BYTES, CACHE_CLIENTS, CACHE_PER_CLIENT, CONNECTION_QUEUE, MAX_COMMAND_MESSAGE,
    MAX_FOLLOW_MESSAGE, MAX_PLANS, MAX_WAITING_RETRIES, QUEUE_BYTES, QUEUE_MESSAGES, RATE, RATE_BURST, RCVHWM,
    SNDHWM,
)
from robocell.hardware.control import ControlLoop
from robocell.hardware.controlproc import ControlProcess, ProcessOptions, RemoteDriver
from robocell.hardware.sched import scheduling
from robocell.hardware.driver import Driver
from robocell.hardware.lease import Lease, LeaseKeeper
from robocell.hardware.liveness import Heartbeat, LivenessChannel, check_deadline
from robocell.hardware.planner import Planner
from robocell.hardware.protocol import (
    LEASED_OPS, MAX_SOCKET_MESSAGE, NO_REPLY_OPS, OPS, Code, Request, WireError, pack, packed_reply,
    parse_request, reply, unpack,
)
from robocell.hardware.ratelimit import RateLimiter, cost
from robocell.hardware.replycache import ReplyCache
from robocell.hardware.security import AllowList, ServerKeys, check_bind
from robocell.hardware.servojudge import ServoJudge
from robocell.hardware.telemetry import TELEMETRY_PERIOD, TelemetryThread, Traffic
from robocell.motion.kinematics_setup import arm_parts

CONTROL_MODES = ("thread", "process")
READ_ONLY_OPS = frozenset({"hello", "state", "motion", "world", "stats", "heartbeat"})
STOP_TIMEOUT = 3.0  # s a fail-stop waits for the controlled deceleration before the driver's own stop
MAX_INTERNAL_PRINTS = 20  # INTERNAL errors printed with their cause to stderr (then only counted)
COUNTERS = ("accepted", "rejected", "duplicates", "rate_limited", "internal", "dropped", "auth_failures")
# a request as read: (monotonic receipt time, routing id, first data frame, data frame count)
Received = tuple[float, bytes, zmq.Frame | None, int]
_HANDSHAKE_EVENTS: dict[int, str] = {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
                     zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed (protocol or mechanism mismatch)"}


class ArmServer:
    """Serve one arm of a cell over ZeroMQ (see docs/protocol.md)."""

    def __init__(self, spec: CellSpec, arm: str, driver: Driver, *, bind: str = "tcp://127.0.0.1:5555",
                 state_bind: str | None = None, state_rate: float = 250.0, watchdog: float = 0.05,
                 lease_timeout: float = 1.0, servo_period: float = 0.004, keys: ServerKeys | None = None,
                 audit: str | Path | None = None, insecure: bool = False, audit_max_bytes: int | None = None,
                 audit_keep: int | None = None, rate: float = RATE,
                 telemetry_period: float = TELEMETRY_PERIOD, liveness: float = 0.05,
                 servo_timeout: float = 0.2, control: str = "thread",
                 process_options: ProcessOptions | None = None) -> None:
        """``control="process"``: the control loop runs in its own process (``process_options``;
        ``driver`` is then None: that process creates it); ``"thread"``: a thread of this one."""
        arm_spec = next((a for a in spec.arms if a.name == arm), None)
        if arm_spec is None:
            raise ConfigError(f"the cell has no arm '{arm}'; its arms are: {', '.join(a.name for a in spec.arms)}")
        if not (1.0 <= state_rate <= 1000.0):
            raise ConfigError(f"state rate {state_rate} Hz is outside [1, 1000] Hz")
        if not (0.005 <= watchdog <= 5.0):
            raise ConfigError(f"watchdog (robocell serve --watchdog) {watchdog} s is outside [0.005, 5] s")
        check_deadline(liveness, "liveness deadline (robocell serve --liveness)")
        if not (0.01 <= servo_timeout <= 10.0):
            raise ConfigError(f"servo timeout (robocell serve --servo-timeout) {servo_timeout} s is outside "
                              "[0.01, 10] s; it is how long a servo stream may go without a setpoint before it "
                              "ends (default 0.2)")
        if not (0.05 <= telemetry_period <= 60.0):
            raise ConfigError(f"telemetry period {telemetry_period} s is outside [0.05, 60] s")
        if not (100.0 <= rate <= 1e7):
            raise ConfigError(f"request rate {rate} per second is outside [100, 1e7]; give the requests per "
                              "second one client may send (default 5000)")
        if control not in CONTROL_MODES:
            raise ConfigError(f"--control {control!r}: choose one of {', '.join(CONTROL_MODES)}")
        if (control == "process") != (process_options is not None) or (control == "thread") != (driver is not None):
            raise ConfigError("ArmServer: give a driver with control='thread', process_options with control='process'")
        check_bind(bind, keys, insecure)
        if state_bind is not None:
            check_bind(state_bind, keys, insecure)
        self.spec = spec
        self.arm = arm
        self.control_mode = control
        self.model, self.kin, self.safety = arm_parts(arm_spec)
        _, plan_kin, _ = arm_parts(arm_spec)  # the planner thread's own copy: no shared solver state
        self.plan_kin = plan_kin
        _, self.cmd_kin, _ = arm_parts(arm_spec)  # and the command thread's (servo checks)
        self.gripper_force = float(arm_spec.gripper.force)
        self.base = np.asarray(arm_spec.base.se3().A, dtype=float)
        self.state_rate = state_rate
        self.watchdog = watchdog
        self.lease_timeout = lease_timeout
        self.servo_period = servo_period
        self.keys = keys
        audit_opts: dict[str, int] = {}
        if audit_max_bytes is not None:
            audit_opts["max_bytes"] = audit_max_bytes
        if audit_keep is not None:
            audit_opts["keep"] = audit_keep
        self.audit = AuditLog(audit, **audit_opts)
        self.counters: collections.Counter[str] = collections.Counter({k: 0 for k in COUNTERS})
        self.lease = Lease()
        self.control_proxy: ControlProcess | None = None
        if process_options is not None:
            self.control_proxy = ControlProcess(process_options, self._event, self._lease_lost, self._heard_rt)
            driver = RemoteDriver(self.control_proxy.info, self.control_proxy)  # type: ignore[assignment]
        assert driver is not None
        self.driver = driver
        try:
            self._check_driver()
        except BaseException:
            if self.control_proxy is not None:
                self.control_proxy.close()
            raise
        self.liveness = liveness
        self.servo_timeout = servo_timeout
        self.heartbeat = Heartbeat.for_deadline(liveness)
        self.ctx = zmq.Context()
        self._auth: Any = None
        self.router = self._socket(zmq.ROUTER)
        self.pub: zmq.Socket[bytes] | None = None
        if self.control_proxy is None:
            self.pub = self._socket(zmq.PUB)
            self.pub.setsockopt(zmq.SNDHWM, 16)  # subscribers want the latest state, not a backlog
        # Memory per connection is bounded by RCVHWM x MAX_SOCKET_MESSAGE: libzmq counts messages,
        # not bytes, and drops a peer whose frame exceeds MAXMSGSIZE before buffering it.
        self.router.setsockopt(zmq.RCVHWM, RCVHWM)
        self.router.setsockopt(zmq.SNDHWM, SNDHWM)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_SOCKET_MESSAGE)
        self.router.bind(bind)
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        if self.pub is not None:
            self.pub.bind(state_bind or _next_port(bind, self.endpoint))
            self.state_endpoint = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        else:
            assert self.control_proxy is not None
            self.state_endpoint = self.control_proxy.state_endpoint
        # handshake failures the ZAP handler never sees (a NULL client at a CURVE server)
        self._monitors = [s.get_monitor_socket(sum(_HANDSHAKE_EVENTS)) for s in (self.router, self.pub)
                          if s is not None] if keys is not None else []
        # --control process: no liveness connections (the lease is kept by heartbeats, on the
        # realtime socket best: the control process's watchdog reads them itself)
        self.leases = LeaseKeeper(self.lease, lease_timeout, self._event,
                                  self._liveness_channel if self.control_proxy is None else None,
                                  self.heartbeat.deadline, self.heartbeat.interval)
        self.control: ControlLoop = self.control_proxy if self.control_proxy is not None else ControlLoop(  # type: ignore[assignment]
            driver, self.kin, self.safety, self.base, self.pub.send, state_rate, watchdog,  # type: ignore[union-attr]
            self.lease, self._event, lease_timeout, telemetry_period, servo_timeout=servo_timeout, keeper=self.leases)
        self._results: collections.deque[tuple[tuple[str, int], bytes, dict[str, Any]]] = collections.deque()
        self._wake = f"inproc://robocell-wake-{id(self)}"
        self._wake_pull = self.ctx.socket(zmq.PULL)
        self._wake_pull.bind(self._wake)
        self._wake_local = threading.local()
        self.planner = Planner()
        self.cache = ReplyCache(CACHE_PER_CLIENT, CACHE_CLIENT_BYTES, CACHE_AGE, CACHE_CLIENTS)
        self.rate = RateLimiter(rate, rate * RATE_BURST / RATE)  # the same share of a second's worth at once
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        # requests read but not handled: per connection, served round-robin (a client with many
        # requests in flight waits for its own, not everyone else); stops go before all of them
        self._queues: collections.OrderedDict[bytes, collections.deque[Received]] = collections.OrderedDict()
        self._stops: collections.deque[Received] = collections.deque()
        self._queued = 0
        self._queued_bytes = 0
        # the servo stream's reference (command thread; the control process has its own)
        self.servo_judge = ServoJudge(self.safety, self.cmd_kin, self.base)
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._command_error: BaseException | None = None
        self._current: tuple[str, str, int] = ("?", "?", 0)  # (key, op, id) of the message being handled
        self._failed: str | None = None
        self.ops = ops.Ops(self)
        self.traffic = Traffic()  # filled by the command thread, read by the telemetry thread
        self.telemetry = TelemetryThread(self)

    # ---------------------------------------------------------------- set-up
    def _check_driver(self) -> None:
        info = self.driver.info
        if tuple(info.joint_names) != tuple(self.kin.joint_names):
            raise ConfigError(f"driver joints {list(info.joint_names)} differ from the cell's arm joints "
                              f"{list(self.kin.joint_names)}; use the cell file that describes this arm")
        lo_bad = self.safety.lower < np.asarray(info.lower) - 1e-9
        hi_bad = self.safety.upper > np.asarray(info.upper) + 1e-9
        if np.any(lo_bad | hi_bad):
            i = int(np.flatnonzero(lo_bad | hi_bad)[0])
            raise ConfigError(
                f"the cell's limits for joint {info.joint_names[i]} [{self.safety.lower[i]:.4f}, "
                f"{self.safety.upper[i]:.4f}] rad exceed the hardware's [{info.lower[i]:.4f}, {info.upper[i]:.4f}] rad; "
                "tighten them in the cell file's safety section")

    def _socket(self, kind: int) -> zmq.Socket[bytes]:
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            if self._auth is None:
                from zmq.auth.thread import ThreadAuthenticator

                self._auth = ThreadAuthenticator(self.ctx)
                self._auth.start()
                self._auth.configure_curve_callback(domain="*", credentials_provider=AllowList(
                    self.keys.authorized, self._refused))
            s.curve_secretkey = self.keys.secret
            s.curve_publickey = self.keys.public
            s.curve_server = True
        return s

    def _refused(self, key: str) -> None:
        """From the authenticator thread: a CURVE key that is not on the allow-list tried to connect."""
        self.counters["auth_failures"] += 1
        self.audit.record(key[:40], "auth", 0, False, "AUTH_FAILED",
                          f"CURVE handshake refused: key not in {self.keys.authorized if self.keys else '?'}",
                          kind=("refused key", "auth", "AUTH_FAILED"))

    # ---------------------------------------------------------------- life cycle
    def start(self) -> ArmServer:
        self._running.set()
        self.control.start()
        if self.control_proxy is None:
            self.telemetry.start()  # the control process publishes no telemetry yet (see docs/realtime.md)
        self._thread = threading.Thread(target=self._serve, name="robocell-commands", daemon=True)
        self._thread.start()
        self._event("start", f"serving arm '{self.arm}' on {self.endpoint}, state on {self.state_endpoint}")
        return self

    def failure(self) -> str | None:
        """Why the server cannot go on (a thread that died), or None while every thread runs."""
        if self._failed is not None:
            return self._failed
        why = None
        if self._thread is not None and not self._thread.is_alive() and self._running.is_set():
            why = f"the command thread died ({self._command_error!r})"
        elif not self.planner.alive:
            why = f"the planner thread died ({self.planner.error!r})"
        elif self.control_proxy is not None and self.control_proxy.failure is not None:
            why = self.control_proxy.failure
        elif self.control.failure is not None or (self._thread is not None and not self.control.alive):
            why = f"the control loop died ({self.control.failure!r})"
        elif self._auth is not None and not self._auth.is_alive():
            why = "the CURVE authenticator thread died"
        if why is not None:
            self._fail_stop(why)
        return self._failed

    def _fail_stop(self, why: str) -> None:
        """Stop the arm (a controlled deceleration if the control loop still runs), once."""
        self._failed = why
        print(f"robocell serve: {why}; stopping the arm and exiting", file=sys.stderr, flush=True)
        self._event("fault", f"server failure: {why}")
        if self.control.alive:
            # a controlled deceleration by the control thread, which owns the driver; close()
            # then calls the driver's own stop once that thread has ended
            self.control.request_stop(f"server failure: {why}")
            t_end = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < t_end and not self._stopped():
                time.sleep(0.005)  # not synchronisation: a bounded wait while the arm decelerates
        else:
            self.driver.stop()  # nobody else drives it any more

    def _stopped(self) -> bool:
        if self.control_proxy is not None:
            st = self.control_proxy.latest
            return self.control_proxy.latched and not any(abs(v) > 1e-3 for v in st.get("qd", ()))
        return self.control.latched and self.control.executor.stopping is None

    def scheduling_text(self) -> str:
        """What the control loop was granted: ``fifo N``, ``nice -20`` or ``normal`` (hello, stats)."""
        if self.control_proxy is not None:
            return self.control_proxy.scheduling
        info = scheduling(self.control.native_id)
        return f"fifo {info['priority']}" if info["realtime"] else "normal"

    def wait(self) -> None:
        """Block until :meth:`close`; raise :class:`ServerFailure` as soon as any server thread died
        (the arm was stopped first)."""
        while self._running.is_set():
            why = self.failure()
            if why is not None:
                raise ServerFailure(f"{why}; the arm was stopped. Restart the server (robocell serve)")
            time.sleep(0.05)  # not synchronisation: just an idle main thread polling its threads

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.control_proxy is None:
            self.telemetry.close()
        self.control.close()
        self.leases.close()
        try:
            self.driver.stop()
        finally:
            self.planner.shutdown()
            self.driver.close()
            if self._auth is not None:
                self._auth.stop()
            for m in self._monitors:
                m.close(linger=0)
            self.ctx.destroy(linger=0)
            self.audit.close()

    def __enter__(self) -> ArmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- command thread
    def _serve(self) -> None:
        try:
            self._serve_loop()
        except BaseException as exc:
            # nothing a client sends gets here (each message is wrapped): a broken socket, a
            # BaseException from a driver call. The supervisor (failure()) stops the arm.
            self._command_error = exc
            print(f"robocell serve: the command thread died: {exc!r}", file=sys.stderr, flush=True)

    def _serve_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_pull, zmq.POLLIN)
        for m in self._monitors:
            poller.register(m, zmq.POLLIN)
        next_chores = 0.0
        while self._running.is_set():
            busy = bool(self._stops or self._queued)
            events = dict(poller.poll(0 if busy else 50))
            now = time.monotonic()
            if self._wake_pull in events:
                while True:
                    try:
                        self._wake_pull.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
            while self._results:
                self._finish(*self._results.popleft())
            if now >= next_chores:
                next_chores = now + 0.01
                self.audit.flush_due()
                self.cache.expire(now)
                for m in self._monitors:
                    self._handshake_events(m)
            self._fill()
            # a stop never waits behind commands already read: every stop read so far goes first,
            # and the socket is read again after each command
            if self._stops:
                while self._stops:
                    self._handle_safely(*self._stops.popleft())
            elif self._queued:
                self._handle_safely(*self._next())

    def _fill(self) -> None:
        """Read what has arrived into the per-connection queues, up to QUEUE_MESSAGES and QUEUE_BYTES.

        libzmq bounds each connection in messages (RCVHWM), not bytes; these queues, bounded in
        bytes, are where requests wait, so that a stop read behind them goes first and each
        connection is served in turn. A connection with CONNECTION_QUEUE requests waiting gets
        RATE_LIMITED for more (it sends faster than it reads its replies).
        """
        while self._queued < QUEUE_MESSAGES and self._queued_bytes < QUEUE_BYTES:
            # EVENTS, not a NOBLOCK recv raising Again: exceptions cost more than the whole reply
            if not int(self.router.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                return
            item = self._read()
            self.traffic.heard(item[1], self._queued)
            if _looks_like_stop(item[2], item[3]) or _looks_like_heartbeat(item[2], item[3]):
                # stops, and heartbeats (the watchdog's clock), never wait behind other requests
                self._stops.append(item)
                continue
            queue = self._queues.get(item[1])
            if queue is None:
                queue = self._queues[item[1]] = collections.deque()
            if len(queue) >= CONNECTION_QUEUE:
                self._handle_safely(*item, overflow=True)
                continue
            queue.append(item)
            self._queued += 1
            self._queued_bytes += len(item[2]) if item[2] is not None else 0

    def _next(self) -> Received:
        """The oldest request of the connection whose turn it is (round-robin)."""
        ident, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        if queue:
            self._queues.move_to_end(ident)
        else:
            del self._queues[ident]
        self._queued -= 1
        self._queued_bytes -= len(item[2]) if item[2] is not None else 0
        return item

    def _read(self) -> Received:
        """One message: (time, routing id, its first data frame, data frame count).

        Frame by frame: a message of a million frames is counted and discarded as it is
        read, never held as a list (libzmq cannot limit the number of frames).
        """
        head = self.router.recv(copy=False)
        t_recv = time.monotonic()
        if not head.more:
            return t_recv, head.bytes, None, 0
        data = self.router.recv(copy=False)
        n = 1
        frame = data
        while frame.more:
            frame = self.router.recv(copy=False)
            n += 1
        return t_recv, head.bytes, data, n

    def _handshake_events(self, monitor: zmq.Socket[bytes]) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while monitor.poll(0, zmq.POLLIN):
            ev = recv_monitor_message(monitor)
            what = _HANDSHAKE_EVENTS.get(int(ev["event"]))
            if what is None:
                continue
            self.counters["auth_failures"] += 1
            endpoint = ev.get("endpoint", b"")
            where = endpoint.decode("utf-8", "replace") if isinstance(endpoint, bytes) else str(endpoint)
            self.audit.record("unauthenticated", "auth", 0, False, "AUTH_FAILED",
                              f"{what} on {where[:100]} (a client without CURVE keys, or not a ZeroMQ client)",
                              kind=("handshake", "auth", "AUTH_FAILED"))

    def _handle_safely(self, t_recv: float, ident: bytes, data: zmq.Frame | None, frames: int,
                       overflow: bool = False) -> None:
        self._current = ("?", "?", 0)
        try:
            self._handle(t_recv, ident, data, frames, overflow)
        except Exception as exc:  # noqa: BLE001 - no message may end the command thread: answer, audit, go on
            self._internal(ident, exc)

    def _internal(self, ident: bytes, exc: Exception) -> None:
        key, op, rid = self._current
        self.counters["internal"] += 1
        if self.counters["internal"] <= MAX_INTERNAL_PRINTS:
            print(f"robocell serve: internal error handling '{op}' from {key}: {type(exc).__name__}: "
                  f"{str(exc)[:300]}", file=sys.stderr, flush=True)
        text = f"{op}: internal server error ({type(exc).__name__}); the arm was stopped. Please report it"
        self.control.request_stop(f"internal server error handling '{op}' ({type(exc).__name__})")
        try:
            self.router.send_multipart([ident, pack(reply(rid, Code.INTERNAL, text, seq=self.control.seq))])
        except Exception as send_exc:  # noqa: BLE001 - cannot even answer: drop it, and say so in the audit log
            self.counters["dropped"] += 1
            self.audit.record(key, op, rid, False, "INTERNAL", f"{text}; the reply could not be sent "
                              f"({type(send_exc).__name__})")
            return
        self.audit.record(key, op, rid, False, "INTERNAL", f"{text}: {type(exc).__name__}: {str(exc)[:200]}")

    def _handle(self, t_recv: float, ident: bytes, data: zmq.Frame | None, frames: int,
                overflow: bool = False) -> None:
        key = self._key_of(data)
        client = key if self.keys is not None else "anonymous/" + ident.hex()
        self._current = (key, "?", 0)
        size = len(data) if data is not None else 0
        # a connection whose queue is full is over its rate whatever its bucket says
        within_rate = self.rate.allow(client, t_recv, cost(size) + frames) and not overflow
        if data is None or frames != 1:
            self._reject(ident, key, "?", 0, WireError(
                Code.BAD_MESSAGE, f"expected 1 data frame, got {frames}; send one msgpack map per message"))
            return
        big = size > MAX_COMMAND_MESSAGE
        if size > MAX_FOLLOW_MESSAGE or (big and b"follow" not in data.bytes):
            self._reject(ident, key, "?", 0, _too_large(size, "?"))
            return
        if not within_rate and not _looks_like_stop(data, frames):
            self._rate_limited(ident, key, data, big)
            return
        try:
            msg = unpack(data.buffer, limit=MAX_FOLLOW_MESSAGE)
        except WireError as exc:
            self._reject(ident, key, "?", 0, exc)
            return
        raw_id = msg.get("id")
        rid = raw_id if type(raw_id) is int and 0 <= raw_id < 2**64 else 0
        raw_op = msg.get("op")
        op = raw_op if isinstance(raw_op, str) and raw_op in OPS else "?"
        self._current = (key, op, rid)
        if big and op != "follow":
            self._reject(ident, key, op, rid, _too_large(size, op))
            return
        try:
            req = parse_request(msg)
        except WireError as exc:
            self._reject(ident, key, op, rid, exc)
            return
        if not within_rate and req.op != "stop":
            self._rate_limited(ident, key, data, big, 0 if req.op in NO_REPLY_OPS else req.id)
            return
        if self.lease.token is not None and req.lease == self.lease.token and key == self.lease.key:
            self.lease.last_heard = t_recv
            self.control.heard(t_recv)
        if req.op in NO_REPLY_OPS:
            return
        if req.op == "state" and not req.args:
            # the hot read: the control thread packed this tick's state already
            self.router.send_multipart([ident, packed_reply(req.id, self.control.seq, self.control.latest_packed)])
            self.counters["accepted"] += 1
            return
        ck = (client, req.id)
        cached = self.cache.get(client, req.id, t_recv) if req.op not in READ_ONLY_OPS else None
        if cached is not None:
            self.counters["duplicates"] += 1
            self.router.send_multipart([ident, cached])
            self.audit.record(key, req.op, req.id, True, "DUPLICATE", "duplicate answered from cache "
                              "(the command was not executed again)")
            return
        if ck in self._pending:
            self.counters["duplicates"] += 1
            waiting = self._pending[ck]
            if len(waiting) < MAX_WAITING_RETRIES:
                waiting.append(ident)
                self.audit.record(key, req.op, req.id, True, "DUPLICATE", "duplicate of a command still being "
                                  "planned: it gets the first reply (the command is not executed again)")
            else:
                self.counters["dropped"] += 1
                self.audit.record(key, req.op, req.id, False, "DUPLICATE", f"retry dropped: {MAX_WAITING_RETRIES} "
                                  "retries of this id already wait for its first reply")
            return
        waited = time.monotonic() - t_recv
        if waited > req.deadline:
            self._reject(ident, key, req.op, req.id, WireError(
                Code.DEADLINE_EXCEEDED, f"{req.op}: waited {waited * 1000:.1f} ms in the server's queue, "
                f"past its deadline of {req.deadline * 1000:.1f} ms; nothing was done"), client=client)
            return
        try:
            if req.op in LEASED_OPS:
                self._check_lease(req, key)
            if req.op in ("move_joints", "move_pose", "follow") and len(self._pending) >= MAX_PLANS:
                raise WireError(Code.BUSY, f"{req.op}: {len(self._pending)} motion commands are being planned "
                                           f"already (limit {MAX_PLANS}); wait for their replies")
            result = self.ops.dispatch(req, key, t_recv)
        except WireError as exc:
            self._reject(ident, key, req.op, req.id, exc, client=None if req.op in READ_ONLY_OPS else client)
            return
        except RobocellError as exc:
            self._reject(ident, key, req.op, req.id, WireError(ops.code_for(exc), str(exc)),
                         client=None if req.op in READ_ONLY_OPS else client)
            return
        if isinstance(result, ops.Deferred):
            self._pending[ck] = [ident]
            result.on_done(lambda body: self._post(ck, body, req.op, key))
            return
        self._finish(ck, pack(reply(req.id, Code.OK, "", result, self.control.seq)),
                     {"op": req.op, "ok": True, "code": "OK", "ident": ident, "key": key})

    def _rate_limited(self, ident: bytes, key: str, data: zmq.Frame, big: bool, rid: int | None = None) -> None:
        if rid is None and not big:
            # echo the id when it is cheap to read, so the client can match the refusal
            try:
                msg = unpack(data.buffer, limit=MAX_COMMAND_MESSAGE)
                raw = msg.get("id")
                rid = raw if type(raw) is int and 0 <= raw < 2**64 else 0
                if msg.get("op") in NO_REPLY_OPS:
                    self.counters["dropped"] += 1  # a heartbeat gets no reply, not even this one
                    self.counters["rate_limited"] += 1
                    return
            except WireError:
                rid = 0
        elif rid == 0:
            self.counters["dropped"] += 1
            self.counters["rate_limited"] += 1
            return
        self.counters["rate_limited"] += 1
        self._reject(ident, key, self._current[1], rid or 0, WireError(
            Code.RATE_LIMITED, f"this client sent more than {self.rate.rate:.0f} requests per second (a burst of "
            f"{self.rate.burst:.0f}; each KiB counts as one more); nothing was done. Slow down and retry"),
            counted=False)

    def _post(self, ck: tuple[str, int], body: dict[str, Any], op: str, key: str) -> None:
        """From the planner thread: queue a finished reply and wake the command thread."""
        body["seq"] = self.control.seq
        self._results.append((ck, pack(body), {"op": op, "ok": body["ok"], "code": body["code"], "msg": body["msg"],
                                               "key": key}))
        sock = getattr(self._wake_local, "sock", None)
        if sock is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._wake)
            self._wake_local.sock = sock
        sock.send(b"", zmq.NOBLOCK)

    def _finish(self, ck: tuple[str, int], data: bytes, meta: dict[str, Any]) -> None:
        if meta["op"] not in READ_ONLY_OPS:
            self.cache.put(ck[0], ck[1], data, time.monotonic())
            if meta["op"] == "lease_acquire" and meta["ok"]:
                self.cache.protected = ck[0]  # the controller's replies outlive other clients' traffic
        idents = self._pending.pop(ck, None) or [meta["ident"]]
        for ident in idents:
            self.router.send_multipart([ident, data])
        if meta["op"] not in READ_ONLY_OPS or not meta["ok"]:
            self.audit.record(meta["key"], meta["op"], ck[1], meta["ok"], meta["code"], meta.get("msg", ""))
        self.counters["accepted" if meta["ok"] else "rejected"] += 1

    def _reject(self, ident: bytes, key: str, op: str, rid: int, exc: WireError, client: str | None = None,
                counted: bool = True) -> None:
        """Answer an error; ``client`` given: remember the reply for retries (a command's answer)."""
        data = pack(reply(rid, exc.code, exc.message, seq=self.control.seq))
        if client is not None and rid:
            self.cache.put(client, rid, data, time.monotonic())
        self.router.send_multipart([ident, data])
        self.audit.record(key, op, rid, False, exc.code.value, exc.message)
        if counted:
            self.counters["rejected"] += 1

    def _key_of(self, data: zmq.Frame | None) -> str:
        if self.keys is None:
            return "anonymous"
        try:
            return str(data.get("User-Id")) if data is not None else "unknown"
        except zmq.ZMQError:
            return "unknown"

    # ---------------------------------------------------------------- lease
    def _check_lease(self, req: Request, key: str) -> None:
        self.leases.check(req.op, req.lease, key)

    def acquire_lease(self, key: str, t_recv: float, presented: str | None,
                      liveness: bool = False) -> tuple[str, LivenessChannel | None]:
        why = self.leases.held_by_other(key, t_recv, presented)
        if why is not None:
            raise WireError(Code.LEASE_HELD, why)  # refused here, before the control thread binds anything
        if self.control_proxy is not None:
            # this process is the lease's authority; the control process gets a copy (its watchdog's)
            token, _ = self.leases.acquire(key, t_recv, presented, False)
            self.control_proxy.lease(token, key, t_recv)
            self.servo_judge.forget()
            return token, None
        # on the control thread: the lease never changes in the middle of a tick's watchdog check
        token, channel = self.control.run(lambda now, st: self.leases.acquire(key, t_recv, presented, liveness),
                                          ops.CALL_TIMEOUT)
        self.servo_judge.forget()
        return token, channel

    def _liveness_channel(self) -> LivenessChannel | None:
        """A new lease's liveness connection (control thread); none for ipc:// and inproc:// servers."""
        if not self.endpoint.startswith("tcp://"):
            return None
        return LivenessChannel(self._socket, self.endpoint, self.heartbeat, secure=self.keys is not None)

    def _lease_lost(self, token: str) -> None:
        """(Link reader.) The control process's watchdog expired the lease ``token``: so does its authority."""
        if self.lease.token == token:
            self.leases.release()

    def _heard_rt(self, t: float) -> None:
        """(Link reader.) The holder was heard on the realtime socket: it keeps its lease here too."""
        if self.lease.token is not None:
            self.lease.last_heard = max(self.lease.last_heard, t)

    def _event(self, kind: str, text: str) -> None:
        self.audit.record("server", kind, 0, kind not in ("stop", "fault"), kind.upper(), text)

    def queue_depths(self) -> dict[str, int]:
        """Work waiting on the command side, for telemetry: replies being planned (or queued for
        the planner), planned replies not yet sent, and the command queues' capacity."""
        return {"planner": len(self._pending), "results": len(self._results), "command_queue_limit": QUEUE_MESSAGES}


def _too_large(size: int, op: str) -> WireError:
    if size > MAX_FOLLOW_MESSAGE:
        return WireError(Code.TOO_LARGE, f"message of {size} bytes exceeds the limit of {MAX_FOLLOW_MESSAGE} bytes "
                                         f"(for follow; {MAX_COMMAND_MESSAGE} for every other request)")
    what = f"'{op}'" if op != "?" else "this request"
    return WireError(Code.TOO_LARGE, f"message of {size} bytes exceeds the limit of {MAX_COMMAND_MESSAGE} bytes for "
                                     f"{what}; only follow may send up to {MAX_FOLLOW_MESSAGE} bytes")


def _looks_like_stop(data: zmq.Frame | None, frames: int) -> bool:
    # cheap pre-scan: a msgpack "op": "stop" pair; misclassifying only changes order (and lets a
    # request past the rate check until it is decoded), never meaning
    return frames == 1 and data is not None and len(data) <= MAX_COMMAND_MESSAGE and b"\xa2op\xa4stop" in data.bytes


def _looks_like_heartbeat(data: zmq.Frame | None, frames: int) -> bool:
    return frames == 1 and data is not None and len(data) <= 256 and b"\xa9heartbeat" in data.bytes


def _next_port(bind: str, endpoint: str) -> str:
    """Default state endpoint: same host, command port + 1 (or a random port if the command port was)."""
    head, _, port = endpoint.rpartition(":")
    if bind.endswith(":0") or bind.endswith(":*") or not port.isdigit():
        return head + ":0" if port.isdigit() else endpoint + "-state"
    return f"{head}:{int(port) + 1}"
