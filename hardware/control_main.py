"""The control process of ``robocell serve --control process`` (docs/realtime.md section 5).

``python -m robocell.hardware.control_main CONFIG_JSON`` (started by
:class:`~robocell.hardware.controlproc.ControlProcess`, never by hand). It owns the driver, the
executor, the setpoint checks, the watchdog and the state PUB socket, and runs the 1 kHz loop
(:class:`~robocell.hardware.control.ControlLoop`) on its main thread, at SCHED_FIFO where the host
grants it. At the start of every tick it reads, in this order: the pipe (EOF: the command process
is gone), its realtime socket (``stop``, ``heartbeat``, ``servo``: at most RT_BATCH messages), the
urgent link (all of it), the bulk link (one message). It never touches the disk: audit lines go
to the command process as events.

Exit status: 0 after ``shutdown``; 1 when the loop failed (the driver was stopped); 2 when
``--realtime require`` was refused; 3 when the command process went away (the arm was stopped).
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import os
import select
import sys
import time
from typing import Any

import numpy as np
import zmq

from robocell.hardware import linkops
from robocell.hardware.control import ControlLoop
from robocell.hardware.controlproc import LINK_VERSION, link_pack, link_unpack
from robocell.hardware.driver import DriverState
from robocell.hardware.executor import Motion
from robocell.hardware.lease import Lease, LeaseKeeper
from robocell.errors import RobocellError
from robocell.hardware.bounds import MAX_STOP_REASON, SERVO_DT
from robocell.hardware.ops import code_for
from robocell.hardware.protocol import Code, WireError, get_float, get_vector, pack, parse_request, reply, unpack
from robocell.hardware.servojudge import ServoJudge
from robocell.hardware.realtime import set_realtime
from robocell.motion.trajectory import JointTrajectory

RT_BATCH = 64  # realtime messages read per tick at most: the loop's work stays bounded
URGENT_BATCH = 256
MAX_RT_MESSAGE = 64 * 1024  # bytes: a setpoint is ~150 B (MAXMSGSIZE drops the peer past it)
RT_RCVHWM = 1000
EVENTS_KEPT = 1024  # events waiting for the link at most; the rest are counted
LEASE_HEARD_UP = 0.05  # s: the command process learns of realtime heartbeats this often (lease expiry)
SHUTDOWN_STOP = 3.0  # s for the deceleration before the driver's own stop


class ControlProcess:
    def __init__(self, cfg: dict[str, Any]) -> None:
        """Build the control process's parts from the command process's ``cfg``.

        Long on purpose: it only opens sockets and builds parts in the order they depend on one
        another (real-time scheduling before the ZeroMQ context), which reads best in one place.
        """
        if cfg.get("v") != LINK_VERSION:
            raise SystemExit(f"robocell control process: link version {cfg.get('v')} != {LINK_VERSION}")
        self.scheduling = set_realtime(cfg["realtime"], int(cfg["rt_priority"]))  # before the ZeroMQ context
        from robocell.cellfile.spec import load_cell_spec
        from robocell.hardware.driver import create_driver
        from robocell.motion.kinematics_setup import arm_parts

        spec = load_cell_spec(cfg["cell"])
        arm_spec = next(a for a in spec.arms if a.name == cfg["arm"])
        _, kin, safety = arm_parts(arm_spec)
        _, judge_kin, _ = arm_parts(arm_spec)
        base = np.asarray(arm_spec.base.se3().A, dtype=float)
        self.pipe = int(cfg["pipe"])
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS_KEPT)
        self.driver = create_driver(cfg["driver"], spec, cfg["arm"], **cfg["driver_options"])
        self.ctx = zmq.Context()
        self.auth: Any = None
        self.keys = None
        if cfg["keys"] is not None:
            from robocell.hardware.security import AllowList, load_server_keys
            from zmq.auth.thread import ThreadAuthenticator

            self.keys = load_server_keys(cfg["keys"])
            allow = AllowList(self.keys.authorized, self._refused)
            allow.keys = allow.keys | {self.keys.public}  # the command process reads the state with the server's key
            self.auth = ThreadAuthenticator(self.ctx)
            self.auth.start()
            self.auth.configure_curve_callback(domain="*", credentials_provider=allow)
        self.pub = self._socket(zmq.PUB)
        self.pub.setsockopt(zmq.SNDHWM, 16)
        self.pub.bind(cfg["state_bind"])
        self.rt = self._socket(zmq.ROUTER)
        self.rt.setsockopt(zmq.MAXMSGSIZE, MAX_RT_MESSAGE)
        self.rt.setsockopt(zmq.RCVHWM, RT_RCVHWM)
        self.rt.setsockopt(zmq.SNDHWM, RT_RCVHWM)
        self.rt.bind(cfg["rt_bind"])
        link = cfg["link"]
        self.urgent = self._link(zmq.PULL, f"ipc://{link}/urgent")
        self.bulk = self._link(zmq.PULL, f"ipc://{link}/bulk")
        self.up = self._link(zmq.PUSH, f"ipc://{link}/up")
        self.lease = Lease()
        self.keeper = LeaseKeeper(self.lease, float(cfg["lease_timeout"]), self._event)
        self.loop = ControlLoop(self.driver, kin, safety, base, self.pub.send, float(cfg["state_rate"]),
                                float(cfg["watchdog"]), self.lease, self._event, float(cfg["lease_timeout"]),
                                servo_timeout=float(cfg["servo_timeout"]), keeper=self.keeper)
        self.judge = ServoJudge(safety, judge_kin, base)
        self.n = len(kin.joint_names)
        self.names = kin.joint_names
        self.servo_period = 1.0 / self.driver.info.control_rate
        self.exit_code = 0
        self.ending: str | None = None
        self.ending_at = 0.0
        self.token_sent: str | None = None
        self.heard_up = 0.0
        self.loop.on_tick = self.tick
        info = self.driver.info
        self.ready = {"k": "ready", "state_endpoint": self.pub.getsockopt_string(zmq.LAST_ENDPOINT),
                      "rt_endpoint": self.rt.getsockopt_string(zmq.LAST_ENDPOINT), "scheduling": self.scheduling,
                      "info": {"joint_names": list(info.joint_names), "lower": np.asarray(info.lower).tolist(),
                               "upper": np.asarray(info.upper).tolist(), "control_rate": info.control_rate,
                               "gripper_max_width": info.gripper_max_width, "vendor": info.vendor}}

    def _socket(self, kind: int) -> zmq.Socket[bytes]:
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            s.curve_secretkey, s.curve_publickey, s.curve_server = self.keys.secret, self.keys.public, True
        return s

    def _link(self, kind: int, address: str) -> zmq.Socket[bytes]:
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(address)
        return s

    def _refused(self, key: str) -> None:
        self._event("auth", f"CURVE handshake refused on the realtime or state socket: key {key[:40]} not "
                            "in the allow-list")

    def _event(self, kind: str, text: str) -> None:
        self.events.append({"k": "event", "kind": kind, "text": text})

    def _up(self, msg: dict[str, Any]) -> None:
        try:
            self.up.send(link_pack(msg), zmq.NOBLOCK)
        except zmq.Again:
            pass  # the command process does not read: its pipe or its exit ends this process soon

    # ---------------------------------------------------------------- every tick, first
    def tick(self, now: float, st: DriverState) -> None:
        if self.ending is None and select.select([self.pipe], [], [], 0)[0] and not os.read(self.pipe, 1):
            self._end(now, "the command process exited (EOF on its pipe)", 3)
        if self.ending is not None:
            self._finish(now)
        self._read_rt(now)
        for _ in range(URGENT_BATCH):
            if not int(self.urgent.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                break
            self._on_urgent(now, link_unpack(self.urgent.recv()))
        if int(self.bulk.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            self._on_bulk(now, st, link_unpack(self.bulk.recv()))
        self._lease_news(now)
        while self.events:
            self._up(self.events.popleft())

    def _end(self, now: float, why: str, code: int) -> None:
        self.ending, self.ending_at, self.exit_code = why, now, code
        self.loop.request_stop(why)
        print(f"robocell control process: {why}; stopping the arm", file=sys.stderr, flush=True)

    def _finish(self, now: float) -> None:
        """Once the stop's deceleration is over (or took too long): end the loop."""
        ex = self.loop.executor
        if (self.loop.latched and ex.stopping is None) or now - self.ending_at > SHUTDOWN_STOP:
            self.loop.close()

    def _lease_news(self, now: float) -> None:
        token = self.lease.token
        if self.token_sent is not None and token != self.token_sent:
            self._up({"k": "lease_lost", "token": self.token_sent})  # expired here (the watchdog's copy)
            self.token_sent = None
        if token is not None and self.lease.last_heard - self.heard_up >= LEASE_HEARD_UP:
            self.heard_up = self.lease.last_heard
            self._up({"k": "heard", "t": self.lease.last_heard})

    def _read_rt(self, now: float) -> None:
        for _ in range(RT_BATCH):
            if not int(self.rt.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                return
            frames = self.rt.recv_multipart(copy=False)
            t_recv = time.monotonic()
            if len(frames) != 2:
                continue  # not a client of this protocol: one data frame per message
            ident, data = frames[0].bytes, frames[1]
            key = self._key_of(data)
            rid = 0
            try:
                req = parse_request(unpack(data.buffer, limit=MAX_RT_MESSAGE))
                rid = req.id
                self._rt_request(req, key, t_recv)
            except WireError as exc:
                self._rt_reply(ident, rid, exc.code, exc.message)
                continue
            except RobocellError as exc:  # the envelope refused a setpoint
                self._rt_reply(ident, rid, code_for(exc), str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - no message may end the loop: refuse it, stop the arm
                self.loop.request_stop(f"internal error on the realtime socket ({type(exc).__name__})")
                self._rt_reply(ident, rid, Code.INTERNAL, f"internal server error ({type(exc).__name__}); the arm "
                                                          "was stopped. Please report it")
                continue
            if req.op == "stop":
                self._rt_reply(ident, rid, Code.OK, "")

    def _key_of(self, data: zmq.Frame) -> str:
        if self.keys is None:
            return "anonymous"
        try:
            return str(data.get("User-Id"))
        except zmq.ZMQError:
            return "unknown"

    def _rt_reply(self, ident: bytes, rid: int, code: Code, msg: str) -> None:
        try:
            self.rt.send_multipart([ident, pack(reply(rid, code, msg, seq=self.loop.seq))], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the client does not read its replies: it loses them, never the loop's time

    def _rt_request(self, req: Any, key: str, t_recv: float) -> None:
        if req.op == "stop":
            reason = req.args.get("reason", "requested")
            reason = reason[:MAX_STOP_REASON] if isinstance(reason, str) else "requested"  # cut, never refused
            self.loop.request_stop(f"stop requested by {key} ({reason})" if reason != "requested" else "stop requested")
            return
        if req.op not in ("servo", "heartbeat"):
            raise WireError(Code.BAD_FIELD, f"{req.op}: the realtime socket takes servo, heartbeat and stop only; "
                                            "send it to the command socket")
        self.keeper.check(req.op, req.lease, key)
        self.lease.last_heard = t_recv
        if req.op == "servo":
            q = get_vector(req.args, "q", "servo", self.n, self.names)
            dt = get_float(req.args, "dt", "servo", lo=SERVO_DT[0], hi=SERVO_DT[1], default=self.servo_period)
            seq = req.args.get("seq", req.id)
            if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**64:
                raise WireError(Code.BAD_FIELD, "servo: field 'seq' must be an integer in [0, 2^64-1]")
            linkops.servo(self.loop, self.judge, seq, q, dt, t_recv)

    def _on_urgent(self, now: float, msg: dict[str, Any]) -> None:
        kind = msg.get("k")
        if kind == "stop":
            self.loop.request_stop(str(msg["reason"]))
        elif kind == "heard":
            if self.lease.token is not None:
                self.lease.last_heard = max(self.lease.last_heard, float(msg["t"]))
        elif kind == "lease":
            if msg["token"] is None:
                self.keeper.release()
            else:
                self.lease.last_heard = float(msg["t"])
                self.lease.key, self.lease.token = msg["key"], msg["token"]
            self.token_sent = self.lease.token
            self.judge.forget()
        elif kind == "shutdown" and self.ending is None:
            self._end(now, "shutdown requested by robocell serve", 0)

    def _on_bulk(self, now: float, st: DriverState, msg: dict[str, Any]) -> None:
        rid = int(msg["id"])
        try:
            if msg["k"] == "start":
                n = int(msg["n"])
                t = np.frombuffer(msg["t"], dtype="<f8")
                traj = JointTrajectory(t.copy(), np.frombuffer(msg["q"], dtype="<f8").reshape(-1, n).copy(),
                                       np.frombuffer(msg["qd"], dtype="<f8").reshape(-1, n).copy())
                q_goal = np.frombuffer(msg["q_goal"], dtype="<f8").copy()
                linkops.start(self.loop, self.judge, now, Motion(int(msg["mid"]), traj, q_goal, 0.0),
                              str(msg["op"]))
                result: Any = None
            else:
                result = linkops.CALLS[str(msg["op"])](self.loop, self.judge, now, st, msg["args"])
            self._up({"k": "result", "id": rid, "ok": True, "result": result, "seq": self.loop.seq})
        except WireError as exc:
            self._up({"k": "result", "id": rid, "ok": False, "code": exc.code.value, "msg": exc.message})
        except RobocellError as exc:
            self._up({"k": "result", "id": rid, "ok": False, "code": code_for(exc).value, "msg": str(exc)})

    # ---------------------------------------------------------------- life cycle
    def run(self) -> int:
        gc.collect()
        gc.freeze()  # the collector never scans the set-up's objects (models, imports) in a tick
        self._up(self.ready)
        self.loop.run_here()
        if self.loop.failure is not None:
            self.exit_code = 1  # the loop stopped the driver already
            self._up({"k": "event", "kind": "fault", "text": f"control loop failed: {self.loop.failure!r}"})
        try:
            self.driver.stop()
        finally:
            self.driver.close()
            # the last state (stopped, and why) reaches the subscribers before the stream ends
            with contextlib.suppress(zmq.ZMQError):
                self.pub.send(self.loop.latest_packed, zmq.NOBLOCK)
            if self.auth is not None:
                self.auth.stop()
            self.pub.close(linger=200)
            self.ctx.destroy(linger=0)
        return self.exit_code


def main() -> None:
    cfg = json.loads(sys.argv[1])
    try:
        proc = ControlProcess(cfg)
    except (RobocellError, zmq.ZMQError, OSError) as exc:
        # a mistake in the set-up (the driver's address, a port in use): said once, status 2
        print(f"robocell serve: the control process could not start: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    raise SystemExit(proc.run())


if __name__ == "__main__":
    main()
