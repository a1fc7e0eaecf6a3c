"""ArmServer: the safety authority between the network and one arm's driver.

Four threads, each owning its sockets (ZeroMQ sockets are not thread-safe):

- the **command thread** (:mod:`robocell.hardware.commands`) owns the ROUTER socket: it
  reads, bounds, checks and answers every request, stops first; no input can end it;
- the **planner thread** (:mod:`robocell.hardware.planner`) plans and checks motions (IK,
  trajectories, the safety envelope) so a long plan never delays a stop or a servo setpoint;
- the **control thread** (:mod:`robocell.hardware.control`) owns the driver and the PUB socket;
- with keys, the **authenticator thread** (``zmq.auth``) answers the CURVE handshakes.

If any of them dies anyway, the server is never half-alive: :meth:`ArmServer.wait`
raises :class:`~robocell.errors.ServerFailure` naming it, after stopping the arm
(``robocell serve`` then exits with status 1 so a supervisor restarts it).
- the **telemetry thread** (:mod:`robocell.hardware.telemetry`) summarises the
  control loop's last second for the state stream, off the loop's critical path.

This module assembles those parts and supervises them (life cycle, fail-stop, the lease's
authority). Whatever a client sends, the driver only ever sees setpoints that passed the
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
from robocell.errors import ConfigError, ServerFailure
from robocell.hardware import ops
from robocell.hardware.audit import AuditLog
from robocell.hardware.commands import HANDSHAKE_EVENTS, READ_ONLY_OPS, CommandThread  # noqa: F401 - READ_ONLY_OPS: importable here as before
from robocell.hardware.bounds import (
    CACHE_AGE, CACHE_CLIENT_BYTES, CACHE_CLIENTS, CACHE_PER_CLIENT, RATE, RATE_BURST, RCVHWM, SNDHWM,
)
from robocell.hardware.control import ControlLoop
from robocell.hardware.controlproc import ControlProcess, ProcessOptions, RemoteDriver
from robocell.hardware.sched import scheduling
from robocell.hardware.driver import Driver
from robocell.hardware.lease import Lease, LeaseKeeper
from robocell.hardware.liveness import Heartbeat, LivenessChannel, check_deadline
from robocell.hardware.planner import Planner
from robocell.hardware.protocol import MAX_SOCKET_MESSAGE, Code, WireError
from robocell.hardware.ratelimit import RateLimiter
from robocell.hardware.replycache import ReplyCache
from robocell.hardware.security import AllowList, ServerKeys, check_bind
from robocell.hardware.servojudge import ServoJudge
from robocell.hardware.telemetry import TELEMETRY_PERIOD, TelemetryThread, Traffic
from robocell.motion.kinematics_setup import arm_parts

CONTROL_MODES = ("thread", "process")
STOP_TIMEOUT = 3.0  # s a fail-stop waits for the controlled deceleration before the driver's own stop
COUNTERS = ("accepted", "rejected", "duplicates", "rate_limited", "internal", "dropped", "auth_failures")


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
        ``driver`` is then None: that process creates it); ``"thread"``: a thread of this one.

        Longer than most on purpose: after the checks it only builds the server's parts and wires
        them together in the order they depend on one another, which reads best in one place."""
        arm_spec = next((a for a in spec.arms if a.name == arm), None)
        if arm_spec is None:
            raise ConfigError(f"the cell has no arm '{arm}'; its arms are: {', '.join(a.name for a in spec.arms)}")
        _check_options(state_rate=state_rate, watchdog=watchdog, liveness=liveness, servo_timeout=servo_timeout,
                       telemetry_period=telemetry_period, rate=rate, control=control,
                       has_driver=driver is not None, has_process_options=process_options is not None)
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
        self._open_sockets(bind, state_bind)
        # --control process: no liveness connections (the lease is kept by heartbeats, on the
        # realtime socket best: the control process's watchdog reads them itself)
        self.leases = LeaseKeeper(self.lease, lease_timeout, self._event,
                                  self._liveness_channel if self.control_proxy is None else None,
                                  self.heartbeat.deadline, self.heartbeat.interval)
        self.control: ControlLoop = self.control_proxy if self.control_proxy is not None else ControlLoop(  # type: ignore[assignment]
            driver, self.kin, self.safety, self.base, self.pub.send, state_rate, watchdog,  # type: ignore[union-attr]
            self.lease, self._event, lease_timeout, telemetry_period, servo_timeout=servo_timeout, keeper=self.leases)
        self.planner = Planner()
        self.cache = ReplyCache(CACHE_PER_CLIENT, CACHE_CLIENT_BYTES, CACHE_AGE, CACHE_CLIENTS)
        self.rate = RateLimiter(rate, rate * RATE_BURST / RATE)  # the same share of a second's worth at once
        # the servo stream's reference (command thread; the control process has its own)
        self.servo_judge = ServoJudge(self.safety, self.cmd_kin, self.base)
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: str | None = None
        self.ops = ops.Ops(self)
        self.traffic = Traffic()  # filled by the command thread, read by the telemetry thread
        self.telemetry = TelemetryThread(self)
        self.commands = CommandThread(self, self._running, self._monitors)

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

    def _open_sockets(self, bind: str, state_bind: str | None) -> None:
        """Bind the ROUTER (and, with the control loop in this process, the PUB) socket, bounded."""
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
        self._monitors = [s.get_monitor_socket(sum(HANDSHAKE_EVENTS)) for s in (self.router, self.pub)
                          if s is not None] if self.keys is not None else []

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
        self._thread = threading.Thread(target=self.commands.run, name="robocell-commands", daemon=True)
        self._thread.start()
        self._event("start", f"serving arm '{self.arm}' on {self.endpoint}, state on {self.state_endpoint}")
        return self

    def failure(self) -> str | None:
        """Why the server cannot go on (a thread that died), or None while every thread runs."""
        if self._failed is not None:
            return self._failed
        why = None
        if self._thread is not None and not self._thread.is_alive() and self._running.is_set():
            why = f"the command thread died ({self.commands.error!r})"
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
        return self.commands.queue_depths()



def _check_options(*, state_rate: float, watchdog: float, liveness: float, servo_timeout: float,
                   telemetry_period: float, rate: float, control: str, has_driver: bool,
                   has_process_options: bool) -> None:
    """Refuse an option outside its range, naming it, its value and its range (ConfigError)."""
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
    if (control == "process") != has_process_options or (control == "thread") != has_driver:
        raise ConfigError("ArmServer: give a driver with control='thread', process_options with control='process'")

def _next_port(bind: str, endpoint: str) -> str:
    """Default state endpoint: same host, command port + 1 (or a random port if the command port was)."""
    head, _, port = endpoint.rpartition(":")
    if bind.endswith(":0") or bind.endswith(":*") or not port.isdigit():
        return head + ":0" if port.isdigit() else endpoint + "-state"
    return f"{head}:{int(port) + 1}"
