"""ArmServer: the safety authority between the network and one arm's driver.

Three threads, each owning its sockets (ZeroMQ sockets are not thread-safe):

- the **command thread** owns the ROUTER socket: it decodes and checks every
  request, enforces the lease, answers duplicates from a reply cache (exactly
  once), and handles stops first in every batch it reads;
- the **planner thread** plans and checks motions (IK, trajectories, the
  safety envelope) so a long plan never delays a stop or a servo setpoint;
- the **control thread** (:mod:`robocell.hardware.control`) owns the driver
  and the PUB socket.

Whatever a client sends, the driver only ever sees setpoints that passed the
safety envelope and the executor's speed and acceleration limiter.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from robocell.cellfile import CellSpec
from robocell.errors import ConfigError, KinematicsError, RobocellError, SafetyViolation, UnreachableError
from robocell.hardware import ops
from robocell.hardware.audit import AuditLog
from robocell.hardware.control import ControlLoop
from robocell.hardware.driver import Driver
from robocell.hardware.lease import Lease, LeaseKeeper
from robocell.hardware.liveness import Heartbeat, LivenessChannel, check_deadline
from robocell.hardware.protocol import (
    LEASED_OPS, MAX_SOCKET_MESSAGE, NO_REPLY_OPS, Code, Request, WireError, pack, packed_reply, parse_request,
    reply, unpack,
)
from robocell.hardware.security import ServerKeys, check_bind
from robocell.kinematics_setup import arm_parts

REPLY_CACHE = 4096  # replies remembered for exactly-once retries
BATCH = 256  # messages read per poll before they are ordered (stops first)
READ_ONLY_OPS = frozenset({"hello", "state", "motion", "world", "stats", "heartbeat"})


class ArmServer:
    """Serve one arm of a cell over ZeroMQ (see docs/protocol.md)."""

    def __init__(self, spec: CellSpec, arm: str, driver: Driver, *, bind: str = "tcp://127.0.0.1:5555",
                 state_bind: str | None = None, state_rate: float = 250.0, watchdog: float = 0.05,
                 lease_timeout: float = 1.0, servo_period: float = 0.004, keys: ServerKeys | None = None,
                 audit: str | Path | None = None, insecure: bool = False, liveness: float = 0.05,
                 servo_timeout: float = 0.2) -> None:
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
        check_bind(bind, keys, insecure)
        if state_bind is not None:
            check_bind(state_bind, keys, insecure)
        self.spec = spec
        self.arm = arm
        self.driver = driver
        self.model, self.kin, self.safety = arm_parts(arm_spec)
        _, plan_kin, _ = arm_parts(arm_spec)  # the planner thread's own copy: no shared solver state
        self.plan_kin = plan_kin
        _, self.cmd_kin, _ = arm_parts(arm_spec)  # and the command thread's (servo checks)
        self.gripper_force = float(arm_spec.gripper.force)
        self.base = np.asarray(arm_spec.base.se3().A, dtype=float)
        self._check_driver()
        self.state_rate = state_rate
        self.watchdog = watchdog
        self.lease_timeout = lease_timeout
        self.servo_period = servo_period
        self.keys = keys
        self.audit = AuditLog(audit)
        self.liveness = liveness
        self.servo_timeout = servo_timeout
        self.heartbeat = Heartbeat.for_deadline(liveness)
        self.lease = Lease()
        self.ctx = zmq.Context()
        self._auth: Any = None
        self.router = self._socket(zmq.ROUTER)
        self.pub = self._socket(zmq.PUB)
        self.pub.setsockopt(zmq.SNDHWM, 16)  # subscribers want the latest state, not a backlog
        self.router.setsockopt(zmq.RCVHWM, 10_000)
        self.router.setsockopt(zmq.SNDHWM, 10_000)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_SOCKET_MESSAGE)
        self.router.bind(bind)
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.pub.bind(state_bind or _next_port(bind, self.endpoint))
        self.state_endpoint = self.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.leases = LeaseKeeper(self.lease, lease_timeout, self._event, self._liveness_channel,
                                  self.heartbeat.deadline, self.heartbeat.interval)
        self.control = ControlLoop(driver, self.kin, self.safety, self.base, self.pub.send, state_rate, watchdog,
                                   self.lease, self._event, lease_timeout, servo_timeout=servo_timeout,
                                   keeper=self.leases)
        self._results: collections.deque[tuple[tuple[str, int], bytes, dict[str, Any]]] = collections.deque()
        self._wake = f"inproc://robocell-wake-{id(self)}"
        self._wake_pull = self.ctx.socket(zmq.PULL)
        self._wake_pull.bind(self._wake)
        self._wake_local = threading.local()
        self._planner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="robocell-planner")
        self._cache: collections.OrderedDict[tuple[str, int], bytes] = collections.OrderedDict()
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._servo_last: tuple[np.ndarray, float] | None = None
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters: collections.Counter[str] = collections.Counter()
        self.ops = ops.Ops(self)

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
                self._auth.configure_curve(domain="*", location=str(self.keys.authorized))
            s.curve_secretkey = self.keys.secret
            s.curve_publickey = self.keys.public
            s.curve_server = True
        return s

    # ---------------------------------------------------------------- life cycle
    def start(self) -> ArmServer:
        self._running.set()
        self.control.start()
        self._thread = threading.Thread(target=self._serve, name="robocell-commands", daemon=True)
        self._thread.start()
        self._event("start", f"serving arm '{self.arm}' on {self.endpoint}, state on {self.state_endpoint}")
        return self

    def wait(self) -> None:
        """Block until :meth:`close` (or the control loop failed)."""
        while self._running.is_set() and self.control.failure is None:
            time.sleep(0.1)  # not synchronisation: just an idle main thread

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.control.close()
        self.leases.close()
        try:
            self.driver.stop()
        finally:
            self._planner.shutdown(wait=False, cancel_futures=True)
            self.driver.close()
            if self._auth is not None:
                self._auth.stop()
            self.ctx.destroy(linger=0)
            self.audit.close()

    def __enter__(self) -> ArmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- command thread
    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_pull, zmq.POLLIN)
        while self._running.is_set():
            events = dict(poller.poll(50))
            self.audit.flush_due()
            if self._wake_pull in events:
                while True:
                    try:
                        self._wake_pull.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
            while self._results:
                self._finish(*self._results.popleft())
            if self.router in events:
                batch = []
                for _ in range(BATCH):
                    # EVENTS, not a NOBLOCK recv raising Again: exceptions cost more than the whole reply
                    if not self.router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                        break
                    batch.append((time.monotonic(), self.router.recv_multipart(copy=False)))
                # a stop never waits behind other commands read in the same batch
                batch.sort(key=lambda item: 0 if _looks_like_stop(item[1]) else 1)
                for t_recv, frames in batch:
                    self._handle(t_recv, frames)

    def _handle(self, t_recv: float, frames: list[zmq.Frame]) -> None:
        ident = frames[0].bytes
        key = self._key_of(frames)
        if len(frames) != 2:
            self._reject(ident, key, "?", 0, WireError(Code.BAD_MESSAGE, f"expected 1 frame, got {len(frames) - 1}"))
            return
        raw = frames[1].bytes
        try:
            msg = unpack(raw)
        except WireError as exc:
            self._reject(ident, key, "?", 0, exc)
            return
        try:
            req = parse_request(msg)
        except WireError as exc:
            rid = msg.get("id") if isinstance(msg.get("id"), int) and not isinstance(msg.get("id"), bool) else 0
            self._reject(ident, key, str(msg.get("op"))[:32], rid if 0 <= rid < 2**64 else 0, exc)
            return
        if self.lease.token is not None and req.lease == self.lease.token and key == self.lease.key:
            self.lease.last_heard = t_recv
        if req.op in NO_REPLY_OPS:
            return
        if req.op == "state" and not req.args:
            # the hot read: the control thread packed this tick's state already; reads are
            # not cached (re-reading has no effect, and the answer should be fresh)
            self.router.send_multipart([ident, packed_reply(req.id, self.control.seq, self.control.latest_packed)])
            self.counters["accepted"] += 1
            return
        ck = (key, req.id)
        if ck in self._cache:
            self.counters["duplicates"] += 1
            self.router.send_multipart([ident, self._cache[ck]])
            return
        if ck in self._pending:
            self.counters["duplicates"] += 1
            self._pending[ck].append(ident)
            return
        waited = time.monotonic() - t_recv
        if waited > req.deadline:
            self._reject(ident, key, req.op, req.id, WireError(
                Code.DEADLINE_EXCEEDED, f"{req.op}: waited {waited * 1000:.1f} ms in the server's queue, "
                f"past its deadline of {req.deadline * 1000:.1f} ms; nothing was done"), cache=True)
            return
        try:
            if req.op in LEASED_OPS:
                self._check_lease(req, key)
            result = self.ops.dispatch(req, key, t_recv)
        except WireError as exc:
            self._reject(ident, key, req.op, req.id, exc, cache=True)
            return
        except RobocellError as exc:
            self._reject(ident, key, req.op, req.id, WireError(_code_for(exc), str(exc)), cache=True)
            return
        if isinstance(result, ops.Deferred):
            self._pending[ck] = [ident]
            result.on_done(lambda body, ck=ck, op=req.op: self._post(ck, body, op))
            return
        self._finish(ck, pack(reply(req.id, Code.OK, "", result, self.control.seq)),
                     {"op": req.op, "ok": True, "code": "OK", "ident": ident})

    def _post(self, ck: tuple[str, int], body: dict[str, Any], op: str) -> None:
        """From the planner thread: queue a finished reply and wake the command thread."""
        body["seq"] = self.control.seq
        self._results.append((ck, pack(body), {"op": op, "ok": body["ok"], "code": body["code"], "msg": body["msg"]}))
        sock = getattr(self._wake_local, "sock", None)
        if sock is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._wake)
            self._wake_local.sock = sock
        sock.send(b"", zmq.NOBLOCK)

    def _finish(self, ck: tuple[str, int], data: bytes, meta: dict[str, Any]) -> None:
        self._remember(ck, data)
        idents = self._pending.pop(ck, None) or [meta["ident"]]
        for ident in idents:
            self.router.send_multipart([ident, data])
        if meta["op"] not in READ_ONLY_OPS or not meta["ok"]:
            self.audit.record(ck[0], meta["op"], ck[1], meta["ok"], meta["code"], meta.get("msg", ""))
        self.counters["accepted" if meta["ok"] else "rejected"] += 1

    def _remember(self, ck: tuple[str, int], data: bytes) -> None:
        self._cache[ck] = data
        while len(self._cache) > REPLY_CACHE:
            self._cache.popitem(last=False)

    def _reject(self, ident: bytes, key: str, op: str, rid: int, exc: WireError, cache: bool = False) -> None:
        data = pack(reply(rid, exc.code, exc.message, seq=self.control.seq))
        if cache and rid:
            self._remember((key, rid), data)
        self.router.send_multipart([ident, data])
        self.audit.record(key, op, rid, False, exc.code.value, exc.message)
        self.counters["rejected"] += 1

    def _key_of(self, frames: list[zmq.Frame]) -> str:
        if self.keys is None:
            return "anonymous"
        try:
            return str(frames[-1].get("User-Id"))
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
        # on the control thread: the lease never changes in the middle of a tick's watchdog check
        token, channel = self.control.run(lambda now, st: self.leases.acquire(key, t_recv, presented, liveness),
                                          ops.CALL_TIMEOUT)
        self._servo_last = None
        return token, channel

    def _liveness_channel(self) -> LivenessChannel | None:
        """A new lease's liveness connection (control thread); none for ipc:// and inproc:// servers."""
        if not self.endpoint.startswith("tcp://"):
            return None
        return LivenessChannel(self._socket, self.endpoint, self.heartbeat, secure=self.keys is not None)

    def _event(self, kind: str, text: str) -> None:
        self.audit.record("server", kind, 0, kind not in ("stop", "fault"), kind.upper(), text)


def _looks_like_stop(frames: list[zmq.Frame]) -> bool:
    # cheap pre-scan: a msgpack "op": "stop" pair; misclassifying only changes order, never meaning
    return len(frames) == 2 and b"\xa2op\xa4stop" in frames[1].bytes


def _next_port(bind: str, endpoint: str) -> str:
    """Default state endpoint: same host, command port + 1 (or a random port if the command port was)."""
    head, _, port = endpoint.rpartition(":")
    if bind.endswith(":0") or bind.endswith(":*") or not port.isdigit():
        return head + ":0" if port.isdigit() else endpoint + "-state"
    return f"{head}:{int(port) + 1}"


def _code_for(exc: RobocellError) -> Code:
    if isinstance(exc, UnreachableError):
        return Code.UNREACHABLE
    if isinstance(exc, SafetyViolation):
        return Code.SAFETY
    if isinstance(exc, KinematicsError):
        return Code.UNREACHABLE
    if isinstance(exc, ConfigError):
        return Code.BAD_FIELD
    return Code.INTERNAL
