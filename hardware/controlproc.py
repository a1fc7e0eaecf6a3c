"""``robocell serve --control process``: the command process's end of the control process.

:class:`ControlProcess` starts ``python -m robocell.hardware.control_main`` (a fresh
interpreter, never a fork: a forked copy of a process with ZeroMQ contexts and threads is not
safe), talks to it over three ipc:// links in a private 0700 directory, and stands in for
:class:`~robocell.hardware.control.ControlLoop` in :class:`~robocell.hardware.server.ArmServer`:

- ``urgent`` (command -> control): stop, lease, heard, shutdown; read first, every tick;
- ``bulk`` (command -> control): motion starts and named calls (``linkops.CALLS``); one per tick;
- ``up`` (control -> command): ready, results, events (audit lines), lease ends, heard times.

The child also holds the read end of a pipe whose write end only this process has: when this
process dies, whatever killed it, the child reads EOF, stops the arm and exits (status 3). The
child's exit is seen here at once (its ``up`` link closes; :attr:`failure`), and ``robocell
serve`` exits 1 with the reason. The state is read from the child's own PUB socket (conflated):
this copy answers ``state`` and the handlers' early checks; the child checks everything again.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Callable

import msgpack
import numpy as np
import zmq

from robocell.errors import ConfigError, ServerFailure
from robocell.hardware.driver import DriverInfo
from robocell.hardware.protocol import Code, WireError, unpack
from robocell.motion.trajectory import JointTrajectory

LINK_VERSION = 1
READY_TIMEOUT = 60.0  # s: imports, URDF parsing and the driver's start on a loaded 2-core machine
HEARD_EVERY = 0.005  # s: the holder's command-socket messages reach the watchdog coalesced to this
HANG_TIMEOUT = 0.5  # s without a state from the control process: it hangs (the stream is 250 Hz by default)
FRESH_WAIT = 0.1  # s a read of the state copy waits for the effect of a call just answered
SHUTDOWN_TIMEOUT = 5.0  # s for the child to decelerate and exit after shutdown (then SIGKILL)


@dataclass
class ProcessOptions:
    """What the control process needs to build its half (passed as JSON on its command line)."""

    cell: str
    arm: str
    driver: str
    driver_options: dict[str, Any]
    state_bind: str
    rt_bind: str
    state_rate: float
    watchdog: float
    lease_timeout: float
    servo_timeout: float
    keys: str | None
    realtime: str  # auto | require | off
    rt_priority: int


def link_pack(msg: dict[str, Any]) -> bytes:
    """A link message (msgpack, ``bin`` allowed: the peer is our own child, over a 0700 directory)."""
    out: bytes = msgpack.packb({"v": LINK_VERSION, **msg}, use_bin_type=True)
    return out


def link_unpack(data: bytes) -> dict[str, Any]:
    msg: dict[str, Any] = msgpack.unpackb(data, raw=False)
    if msg.get("v") != LINK_VERSION:
        raise ValueError(f"link message of version {msg.get('v')}, expected {LINK_VERSION} (mixed installations)")
    return msg


def _arr(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f8").tobytes()


class RemoteDriver:
    """The driver's description in the command process (the control process alone drives it)."""

    def __init__(self, info: DriverInfo, proxy: ControlProcess) -> None:
        self.info = info
        self._proxy = proxy

    def stop(self) -> None:
        self._proxy.request_stop("the command process stopped the server")

    def close(self) -> None:
        pass


class ControlProcess:
    def __init__(self, opts: ProcessOptions, on_event: Callable[[str, str], None],
                 on_lease_lost: Callable[[str], None], on_heard: Callable[[float], None]) -> None:
        self.on_event = on_event
        self.on_lease_lost = on_lease_lost
        self.on_heard = on_heard
        self.dir = tempfile.mkdtemp(prefix="robocell-link-")  # mode 0700: this user only
        os.chmod(self.dir, 0o700)
        self.ctx = zmq.Context()
        self._send_lock = threading.Lock()  # urgent/bulk are sent from the command, planner and main threads
        self.urgent = self._bind(zmq.PUSH, "urgent")
        self.bulk = self._bind(zmq.PUSH, "bulk")
        self.up = self._bind(zmq.PULL, "up")
        pipe_r, self._pipe_w = os.pipe()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cfg = {**opts.__dict__, "link": self.dir, "pipe": pipe_r, "v": LINK_VERSION}
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "robocell.hardware.control_main", json.dumps(cfg)],
                                         pass_fds=(pipe_r,), env=env)
        finally:
            os.close(pipe_r)
        self._ids = itertools.count(1)
        self.hang_timeout = max(HANG_TIMEOUT, 5.0 / opts.state_rate)  # five state periods at least
        self._futures: dict[int, Future[Any]] = {}
        self._last_heard_sent = 0.0
        self._failed: str | None = None
        self._latest: dict[str, Any] = {}
        self._latest_packed = b""
        self._seq = 0
        self._min_seq = 0  # the first state that shows the effect of the last call answered
        self._fresh = threading.Condition()
        ready = self._wait_ready()
        self.state_endpoint: str = ready["state_endpoint"]
        self.rt_endpoint: str = ready["rt_endpoint"]
        self.scheduling: str = ready["scheduling"]
        i = ready["info"]
        self.info = DriverInfo(tuple(i["joint_names"]), np.asarray(i["lower"]), np.asarray(i["upper"]),
                               float(i["control_rate"]), float(i["gripper_max_width"]), str(i["vendor"]))
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.CONFLATE, 1)
        if opts.keys is not None:
            from robocell.hardware.security import load_server_keys

            # the server's own key pair: the control process accepts it besides the allow-list
            k = load_server_keys(opts.keys)
            self.sub.curve_secretkey, self.sub.curve_publickey, self.sub.curve_serverkey = k.secret, k.public, k.public
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self.state_endpoint)
        self._running = True
        self._reader = threading.Thread(target=self._read, name="robocell-control-link", daemon=True)
        self._reader.start()
        t_end = time.monotonic() + READY_TIMEOUT
        while not self._latest and time.monotonic() < t_end and self._failed is None:
            time.sleep(0.005)  # bounded wait for the first state (an event: the reader fills it)
        if not self._latest:
            self.close()
            raise ServerFailure(f"the control process published no state within {READY_TIMEOUT:.0f} s "
                                f"({self._failed or 'it runs, but its state stream is silent'})")

    def _bind(self, kind: int, name: str) -> zmq.Socket[bytes]:
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.bind(f"ipc://{self.dir}/{name}")
        return s

    def _wait_ready(self) -> dict[str, Any]:
        t_end = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < t_end:
            if self.up.poll(100):
                msg = link_unpack(self.up.recv())
                if msg.get("k") == "ready":
                    return msg
                if msg.get("k") == "event":
                    print(f"robocell serve: control process: {msg.get('text')}", file=sys.stderr, flush=True)
            code = self.proc.poll()
            if code is not None:
                self._cleanup()
                # its own message (which call was refused, what failed) is on stderr already
                if code == 2:
                    raise ConfigError("the control process refused to start (--realtime require, or a bad option; "
                                      "its message is above)")
                raise ServerFailure(f"the control process exited with status {code} while starting (its message "
                                    "is above)")
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._cleanup()
        raise ServerFailure(f"the control process did not start within {READY_TIMEOUT:.0f} s")

    # ---------------------------------------------------------------- the link's reader thread
    def _read(self) -> None:
        poller = zmq.Poller()
        poller.register(self.up, zmq.POLLIN)
        poller.register(self.sub, zmq.POLLIN)
        heard = last = time.monotonic()
        while self._running:
            events = dict(poller.poll(50))
            now = time.monotonic()
            if now - last > self.hang_timeout / 2:
                heard = now  # this thread was descheduled itself: the silence is not the child's
            last = now
            if self.sub in events:
                heard = now
                data = self.sub.recv()
                st = unpack(data)
                with self._fresh:
                    self._latest_packed, self._latest, self._seq = data, st, int(st.get("seq", 0))
                    self._fresh.notify_all()
            if self.up in events:
                while self.up.poll(0):
                    self._on_up(link_unpack(self.up.recv()))
            if now - heard > self.hang_timeout and self.proc.poll() is None and self._failed is None:
                # alive but not ticking (a driver call that blocks): its watchdog is dead too
                self._failed = (f"the control process published no state for {now - heard:.2f} s (hung); it was "
                                "killed, the arm was stopped by its controller (the driver's own stop)")
                self.proc.kill()
            if self.failure is not None:
                for fut in list(self._futures.values()):
                    if not fut.done():
                        fut.set_exception(WireError(Code.FAULT, f"{self.failure}; restart robocell serve"))

    def _on_up(self, msg: dict[str, Any]) -> None:
        kind = msg.get("k")
        if kind == "result":
            fut = self._futures.pop(int(msg["id"]), None)
            if msg.get("seq") is not None:
                # the call changed the loop in the tick after state `seq`: later reads of the copy
                # wait for a state that shows it (a client reads its own writes)
                self._min_seq = max(self._min_seq, int(msg["seq"]) + 1)
            if fut is not None and not fut.done():
                if msg["ok"]:
                    fut.set_result(msg.get("result"))
                else:
                    fut.set_exception(WireError(Code(msg["code"]), str(msg["msg"])))
        elif kind == "event":
            self.on_event(str(msg["kind"]), str(msg["text"]))
        elif kind == "lease_lost":
            self.on_lease_lost(str(msg["token"]))
        elif kind == "heard":
            self.on_heard(float(msg["t"]))

    # ---------------------------------------------------------------- ControlLoop's API
    def _send(self, sock: zmq.Socket[bytes], msg: dict[str, Any]) -> None:
        with self._send_lock:
            sock.send(link_pack(msg))

    def invoke(self, name: str, args: dict[str, Any], timeout: float) -> Any:
        """Run ``linkops.CALLS[name]`` in the control process at the start of a tick; its result or WireError."""
        return self._wait(self._request(self.bulk, {"k": "call", "op": name, "args": args}), timeout)

    def begin(self, mid: int, traj: JointTrajectory, q_goal: np.ndarray, op: str, timeout: float) -> None:
        """Start a planned motion (arrays as raw float64: decoded in microseconds inside a tick)."""
        qd = traj.qd if traj.qd is not None else np.zeros_like(traj.q)
        self._wait(self._request(self.bulk, {"k": "start", "op": op, "mid": mid, "n": int(traj.q.shape[1]),
                                             "t": _arr(traj.t), "q": _arr(traj.q), "qd": _arr(qd),
                                             "q_goal": _arr(q_goal)}), timeout)

    def _request(self, sock: zmq.Socket[bytes], msg: dict[str, Any]) -> tuple[int, Future[Any]]:
        if self.failure is not None:
            raise WireError(Code.FAULT, f"{self.failure}; restart robocell serve")
        rid = next(self._ids)
        fut: Future[Any] = Future()
        self._futures[rid] = fut
        self._send(sock, {**msg, "id": rid})
        return rid, fut

    def _wait(self, req: tuple[int, Future[Any]], timeout: float) -> Any:
        rid, fut = req
        try:
            return fut.result(timeout=timeout)
        except FutureTimeout:
            self._futures.pop(rid, None)
            raise WireError(Code.BUSY, f"the control process did not answer within {timeout:.1f} s (overloaded or "
                                       "stalled); the command may or may not have been done: read the state") from None

    def request_stop(self, reason: str) -> None:
        if self.proc.poll() is None:
            self._send(self.urgent, {"k": "stop", "reason": reason})

    def lease(self, token: str | None, key: str | None, t: float) -> None:
        """The authority's lease, copied to the control process (None: cleared)."""
        self._send(self.urgent, {"k": "lease", "token": token, "key": key, "t": t})

    def heard(self, t: float) -> None:
        """The holder was heard on the command socket: tell the watchdog, coalesced (at most every 5 ms)."""
        if t - self._last_heard_sent >= HEARD_EVERY:
            self._last_heard_sent = t
            self._send(self.urgent, {"k": "heard", "t": t})

    # ---------------------------------------------------------------- the state copy
    def _wait_fresh(self) -> None:
        if self._seq >= self._min_seq:
            return
        with self._fresh:
            # at most a few state periods: the next state published shows the call's effect
            self._fresh.wait_for(lambda: self._seq >= self._min_seq or self._failed is not None, timeout=FRESH_WAIT)

    @property
    def seq(self) -> int:
        """The loop's state seq as far as this process knows (replies carry it: the client waits for seq + 1)."""
        return max(self._seq, self._min_seq - 1)

    @property
    def latest(self) -> dict[str, Any]:
        self._wait_fresh()
        return self._latest

    @property
    def latest_packed(self) -> bytes:
        self._wait_fresh()
        return self._latest_packed

    # ---------------------------------------------------------------- ArmView (linkops) from the state copy
    @property
    def latched(self) -> bool:
        return self.latest.get("mode") in ("stopped", "fault") and bool(self.latest.get("faults"))

    @property
    def hardware_faults(self) -> tuple[str, ...]:
        return tuple(self.latest.get("faults", ())) if self.latest.get("mode") == "fault" else ()

    @property
    def fault_texts(self) -> list[str]:
        return list(self.latest.get("faults", ()))

    @property
    def moving_id(self) -> int | None:
        if self.latest.get("mode") != "moving":
            return None
        m = self.latest.get("motion")
        return int(m["id"]) if isinstance(m, dict) else -1

    @property
    def q_cmd(self) -> np.ndarray:
        return np.asarray(self.latest["q_cmd"], dtype=float)

    @property
    def q_meas(self) -> np.ndarray:
        return np.asarray(self.latest["q"], dtype=float)

    # ---------------------------------------------------------------- life cycle
    def start(self) -> None:
        """(ControlLoop.start) The child ticks from its ready line on."""

    @property
    def alive(self) -> bool:
        return self._failed is None and self.proc.poll() is None

    @property
    def failure(self) -> str | None:
        """Why the control process is gone (it exited, or was killed), or None while it runs."""
        if self._failed is None and self.proc.poll() is not None:
            code = self.proc.returncode
            how = f"signal {-code}" if code < 0 else f"code {code}"
            self._failed = (f"the control process exited with {how}; the arm was stopped by its controller "
                            "(the driver's own stop)")
        return self._failed

    def close(self) -> None:
        """Shut the child down (it decelerates, stops the driver, exits 0); SIGKILL if it does not."""
        if self.proc.poll() is None:
            try:
                self._send(self.urgent, {"k": "shutdown"})
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT)
            except (subprocess.TimeoutExpired, zmq.ZMQError):
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._running = False
        if hasattr(self, "_reader"):
            self._reader.join(timeout=2.0)
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            os.close(self._pipe_w)
        except OSError:
            pass
        self.ctx.destroy(linger=0)
        shutil.rmtree(self.dir, ignore_errors=True)
