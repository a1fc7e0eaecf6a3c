"""The processes of ``benchmarks/bench_control_path.py`` (issue 12): one role per process.

  server   alternatives A, A-fifo, A-chrt: the 1 kHz control loop as a thread beside a command
           thread and a planner thread (the shape of ``robocell serve`` on main)
  control  alternatives B-E: the control loop alone in its process; it reads its own servo
           socket at the start of every tick and publishes the state stream
  sink     the transport floor: B-E's sockets, a receiver blocked in poll instead of the loop
  command  B-E: the command and planner threads in their own process
  servo    a Python client streaming servo setpoints at 1 kHz
  load     a Python client sending requests at a fixed high rate and reading the state stream

The loop does the per-tick work of ``robocell.hardware.control.ControlLoop``: the real sim driver
(PyBullet, paced at 1 kHz), the real ``Executor`` tracking servo setpoints, the state built and
msgpack-packed every tick, published at 250 Hz. Setpoints are checked as ``ops.op_servo`` checks
them (decode, envelope, lease token, limits, workspace, step). The command side does what the
server's command and planner threads do: decode, check and answer requests, plan (IK and
trajectories) every 50 ms, and leave reference cycles behind so that the collector runs.

Every role but ``servo`` prints one ``READY {json}`` line once its sockets are bound, runs until
it reads ``stop`` or EOF on stdin (so it also ends when the benchmark dies), writes its figures
to ``--out``, prints ``DONE`` and exits 0. Ports are random loopback ports.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import queue
import select
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "examples" / "cells" / "tabletop.yaml"
WATCHDOG = 0.05  # s: the server's default command-freshness deadline
STATE_RATE = 250.0  # Hz: the server's default state stream
SERVO_BATCH = 64  # setpoints the control process reads per tick at most (bounded work per tick)
PLAN_PERIOD = 0.05  # s between the planner thread's IK/trajectory jobs
CYCLES_PER_REQUEST = 20  # reference cycles left behind per request (futures, callbacks, tracebacks)
REPLY_CACHE = 4096  # replies kept, as the server's exactly-once cache
PLAN_QUEUE = 64  # follow checks waiting for the planner at most
HEARTBEAT = 0.01  # s between command-process heartbeats to the control process
RT_PRIORITY = 80  # SCHED_FIFO priority of the control loop (1..99; threaded IRQ handlers sit at 50)
CLIENT_RT_PRIORITY = 70  # the servo client's, with --client-sched fifo: below the loop it feeds
AMP = 0.3  # rad: the servo stream's sway of joint 1 (0.5 Hz, < 0.5 rad/s)
TOKEN = "bench-lease-token"
MAX_SERVO_MESSAGE = 64 * 1024  # bytes: a servo setpoint is ~150 B


# ---------------------------------------------------------------- shared set-up
@dataclass
class Parts:
    spec: Any
    arm: str
    kin: Any
    safety: Any
    base: np.ndarray
    names: tuple[str, ...]


def parts() -> Parts:
    from robocell.cellfile.spec import load_cell_spec
    from robocell.motion.kinematics_setup import arm_parts

    spec = load_cell_spec(CELL)
    arm = spec.arms[0]
    _, kin, safety = arm_parts(arm)
    return Parts(spec, arm.name, kin, safety, np.asarray(arm.base.se3().A, dtype=float), tuple(kin.joint_names))


def socket(ctx: zmq.Context[zmq.Socket[bytes]], kind: int, bind: bool = False, hwm: int = 1000) -> zmq.Socket[bytes]:
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, hwm)
    s.setsockopt(zmq.RCVHWM, hwm)
    if bind:
        s.bind("tcp://127.0.0.1:0")
    return s


def endpoint(s: zmq.Socket[bytes]) -> str:
    return s.getsockopt_string(zmq.LAST_ENDPOINT)


def apply_sched(kind: str, priority: int = RT_PRIORITY) -> str:
    """Raise the calling thread's priority; threads it starts later inherit it (Linux)."""
    try:
        if kind == "fifo":
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        elif kind == "nice":
            os.setpriority(os.PRIO_PROCESS, 0, -20)  # on Linux: this thread, inherited by new ones
        elif kind != "normal":
            raise ValueError(f"unknown scheduling '{kind}'; use normal, fifo or nice")
    except PermissionError as exc:
        return f"refused ({exc.strerror})"
    return "granted" if kind != "normal" else "normal"


POLICY = {0: "OTHER", 1: "FIFO", 2: "RR", 3: "BATCH", 5: "IDLE", 6: "DEADLINE"}


def threads() -> list[str]:
    """This process's threads as 'name:policy/rtprio/nice' (from /proc), to show what was granted."""
    out = []
    for tid in sorted(os.listdir("/proc/self/task")):
        try:
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            f = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        # fields after the name: state is field 3, nice 19, rt_priority 40, policy 41
        out.append(f"{comm}:{POLICY.get(int(f[38]), f[38])}/{f[37]}/{f[16]}")
    return out


class GcClock:
    """Counts and times this process's collections per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.max = [0.0, 0.0, 0.0]
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        g = info["generation"]
        d = time.perf_counter() - self._t0
        self.count[g] += 1
        self.total[g] += d
        self.max[g] = max(self.max[g], d)

    def summary(self) -> dict[str, Any]:
        return {"count": list(self.count), "total_ms": [t * 1e3 for t in self.total], "max_ms": [m * 1e3 for m in self.max]}


def settle_heap() -> dict[str, Any]:
    """What ``robocell serve`` does after set-up: collect, then freeze what lives as long as the server.

    The first full collection is timed: it is what one would cost the loop without the freeze.
    """
    n = len(gc.get_objects())
    t = time.perf_counter()
    gc.collect()
    full = time.perf_counter() - t
    gc.freeze()
    return {"objects": n, "full_collection_ms": full * 1e3}


def stop_requested() -> bool:
    """True once stdin says ``stop`` or is closed (the benchmark ended or died)."""
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    if not ready:
        return False
    line = sys.stdin.readline()
    return line == "" or line.strip() == "stop"


def wait_for_stop() -> None:
    while True:
        line = sys.stdin.readline()
        if line == "" or line.strip() == "stop":
            return


def make_cycles(n: int) -> None:
    """Leave ``n`` reference cycles behind; only the collector frees them."""
    for _ in range(n):
        a: dict[str, Any] = {}
        a["self"] = [a]


def write(out: str, data: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
    Path(out + ".json").write_text(json.dumps(data))
    if arrays is not None:
        np.savez(out + ".npz", **arrays)


# ---------------------------------------------------------------- servo checks (as ops.op_servo)
class ServoCheck:
    """Checks a servo request as the server does; keeps the previous setpoint for the step check."""

    def __init__(self, p: Parts) -> None:
        self.p = p
        self.last: tuple[np.ndarray, float] | None = None
        self.rejected = 0
        self.first_error = ""

    def check(self, req: Any, t: float, q_cmd: np.ndarray, q_meas: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, float]:
        from robocell.hardware.ops import SERVO_FRESH
        from robocell.hardware.protocol import Code, WireError, get_float, get_vector

        if req.op != "servo":
            raise WireError(Code.UNKNOWN_OP, f"the servo socket takes servo requests only, got '{req.op[:32]}'")
        if req.lease != TOKEN:
            raise WireError(Code.NO_LEASE, "servo needs the control lease token in field 'lease'")
        p = self.p
        q = get_vector(req.args, "q", "servo", len(p.names), p.names)
        dt = get_float(req.args, "dt", "servo", lo=0.0002, hi=1.0, default=0.004)
        seq = req.args.get("seq", req.id)
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise WireError(Code.BAD_FIELD, "servo: field 'seq' must be a non-negative integer")
        p.safety.check_joints(q, what="servo setpoint")
        p.safety.check_tcp((p.base @ p.kin.fk_matrix(q))[:3, 3], what="servo setpoint")
        fresh = self.last is not None and t - self.last[1] < SERVO_FRESH
        if fresh and self.last is not None:
            ref = self.last[0]
        else:
            ref = q_meas if np.max(np.abs(q - q_meas)) < np.max(np.abs(q - q_cmd)) else q_cmd
        p.safety.check_step(ref, q, dt)
        velocity = (q - ref) / dt if fresh else np.zeros(len(q))
        self.last = (q, t)
        return seq, q, velocity, dt

    def reject(self, exc: Exception) -> None:
        self.rejected += 1
        if not self.first_error:
            self.first_error = str(exc)[:300]


# ---------------------------------------------------------------- the control loop
class TickLoop:
    """The per-tick work of ``ControlLoop._run``; where setpoints come from is ``take``'s business."""

    def __init__(self, driver: Any, p: Parts, publish: Callable[[bytes], Any], max_ticks: int) -> None:
        from robocell.hardware.control import STALL_GRACE
        from robocell.hardware.executor import Executor

        self.driver = driver
        self.p = p
        self.publish = publish
        self.period = 1.0 / driver.info.control_rate
        self.state_period = 1.0 / STATE_RATE
        self.grace = STALL_GRACE
        st = driver.read()
        self.q_meas = np.asarray(st.q, dtype=float)
        self.executor = Executor(p.safety, self.q_meas.copy(), self.period, self._result)
        self.ticks = np.zeros(max_ticks)
        self.applied = np.zeros(max_ticks, dtype=np.int64)
        self.busy = np.zeros(max_ticks)  # s from the tick's start to its wait for the next period
        self.n = 0
        self.last_heard = 0.0  # monotonic s of the controlling client's newest message (0: none yet)
        self.false_trips = 0  # watchdog deadlines passed although the client kept streaming
        self.trip_silences: list[float] = []
        self._trip: tuple[float, float] | None = None  # (last_heard, silence) when a deadline passed
        self._last_late = -float("inf")
        self.seq = 0
        self.latest_packed = b""
        self._build_state(time.monotonic(), st)

    def run(self, take: Callable[[float], None], running: Callable[[int], bool]) -> None:
        drv, ex = self.driver, self.executor
        last = next_pub = time.monotonic()
        while running(self.n):
            now = time.monotonic()
            if now - last > 2.0 * self.period:
                self._last_late = now
            last = now
            take(now)
            st = drv.read()
            self.q_meas = np.asarray(st.q, dtype=float)
            self._watch(now)
            q, qd = ex.step(now, self.q_meas, np.asarray(st.qd, dtype=float))
            drv.command(q, qd)
            self._build_state(now, st)
            if now >= next_pub:
                self.publish(self.latest_packed)
                next_pub = max(next_pub + self.state_period, now - self.state_period)
            if self.n < len(self.ticks):
                self.ticks[self.n] = now
                self.applied[self.n] = ex.servo_seq
                self.busy[self.n] = time.monotonic() - now
                self.n += 1
            drv.wait_period()

    def _watch(self, now: float) -> None:
        """Count the stops main's watchdog would command (its stall grace included) without stopping.

        A deadline that passed is false if the client was heard again afterwards: it never
        stopped streaming; its setpoints just did not reach whoever judges silence in time.
        """
        heard = self.last_heard
        if heard == 0.0:
            return
        if self._trip is not None:
            if heard > self._trip[0]:
                self.false_trips += 1
                self.trip_silences.append(self._trip[1])
                self._trip = None
            return
        silent = now - heard
        if silent > WATCHDOG and now - self._last_late >= self.grace:
            self._trip = (heard, silent)

    def _result(self, q_goal: np.ndarray, q_end: np.ndarray, duration: float, completed: bool) -> dict[str, Any]:
        return {"joint_error": float(np.max(np.abs(q_end - q_goal))), "duration": duration, "completed": completed}

    def _build_state(self, now: float, st: Any) -> None:
        """The state message of ``ControlLoop._build_state``, packed every tick."""
        from robocell.hardware.protocol import VERSION, pack

        ex = self.executor
        q = np.asarray(st.q, dtype=float)
        tcp = self.p.base @ self.p.kin.fk_matrix(q)
        self.seq += 1
        latest = {
            "v": VERSION, "seq": self.seq, "t": now, "wall": time.time(), "tick": ex.tick,
            "q": q.tolist(), "qd": np.asarray(st.qd, dtype=float).tolist(), "q_cmd": ex.q_cmd.tolist(),
            "tcp": tcp.reshape(-1).tolist(), "mode": "servo" if ex.servoing else "idle", "faults": [],
            "lease": "client", "motion": None, "servo_seq": ex.servo_seq,
            "gripper": {"width": float(st.gripper_width), "grasped": bool(st.grasped),
                        "busy": bool(self.driver.gripper_busy()), "seq": 0},
        }
        self.latest_packed = pack(latest)

    def figures(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return ({"ticks": self.n, "overflow": self.n >= len(self.ticks), "false_trips": self.false_trips,
                 "trip_silences_ms": [s * 1e3 for s in self.trip_silences]},
                {"ticks": self.ticks[:self.n], "applied": self.applied[:self.n], "busy": self.busy[:self.n]})


# ---------------------------------------------------------------- the command side
class Planner:
    """The planner thread: a joint or linear plan every PLAN_PERIOD, and the checks of follow requests."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], p: Parts, q0: np.ndarray, wake: str) -> None:
        from robocell.motion.kinematics_setup import arm_parts

        arm = next(a for a in p.spec.arms if a.name == p.arm)
        _, self.kin, _ = arm_parts(arm)  # the planner's own solver, as in the server
        self.ctx, self.p, self.q0, self.wake = ctx, p, q0, wake
        self.jobs: queue.Queue[tuple[bytes, int, Any]] = queue.Queue(maxsize=PLAN_QUEUE)
        self.done: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.plans = 0
        self.plan_errors = 0
        self.plan_max = 0.0

    def run(self, running: threading.Event) -> None:
        from spatialmath import SE3

        from robocell.errors import RobocellError
        from robocell.hardware.protocol import Code, pack, reply
        from robocell.motion.planning import check_motion, plan_pose

        p = self.p
        push = socket(self.ctx, zmq.PUSH)
        push.connect(self.wake)
        rng = np.random.default_rng(12)
        home = p.base @ self.kin.fk_matrix(self.q0)
        next_plan = time.monotonic()
        while running.is_set():
            try:
                ident, rid, traj = self.jobs.get(timeout=max(0.0, min(0.1, next_plan - time.monotonic())))
            except queue.Empty:
                pass
            else:
                try:
                    check_motion(self.kin, p.safety, p.base, traj)
                    body = reply(rid, result={"duration": traj.duration})
                except RobocellError as exc:
                    body = reply(rid, Code.SAFETY, str(exc))
                self.done.append((ident, pack(body)))
                push.send(b"", zmq.NOBLOCK)
            now = time.monotonic()
            if now >= next_plan:
                target = home.copy()
                target[:3, 3] += rng.uniform(-0.12, 0.12, 3)
                t = time.perf_counter()
                try:
                    traj, _ = plan_pose(self.kin, p.safety, p.base, self.q0, SE3(target, check=False),
                                        linear=self.plans % 2 == 1)
                    check_motion(self.kin, p.safety, p.base, traj)
                except RobocellError:
                    self.plan_errors += 1
                self.plan_max = max(self.plan_max, time.perf_counter() - t)
                self.plans += 1
                next_plan = max(next_plan + PLAN_PERIOD, now)
        push.close()


class Commands:
    """The command thread: read a batch, decode and check each request, answer it.

    ``servo`` (alternative A only) checks a setpoint and hands it to the loop. ``heartbeat``
    (B-E) is the push socket to the control process, which judges this process's liveness.
    """

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], p: Parts, router: zmq.Socket[bytes],
                 latest: Callable[[], tuple[int, bytes]], planner: Planner, wake: zmq.Socket[bytes],
                 servo: Callable[[Any, float], int] | None = None, sub: zmq.Socket[bytes] | None = None,
                 heartbeat: zmq.Socket[bytes] | None = None) -> None:
        self.ctx, self.p, self.router, self.latest = ctx, p, router, latest
        self.planner, self.wake, self.servo, self.sub, self.heartbeat = planner, wake, servo, sub, heartbeat
        self.cache: collections.OrderedDict[tuple[bytes, int], bytes] = collections.OrderedDict()
        self.counts: collections.Counter[str] = collections.Counter()
        from robocell.hardware.protocol import pack

        self.sub_latest: tuple[int, bytes] = (0, pack({}))  # until the first state arrives

    def run(self, running: threading.Event) -> None:
        poller = zmq.Poller()
        for s in (self.router, self.wake, self.sub):
            if s is not None:
                poller.register(s, zmq.POLLIN)
        next_hb = time.monotonic()
        while running.is_set():
            events = dict(poller.poll(5))
            now = time.monotonic()
            if self.heartbeat is not None and now >= next_hb:
                try:
                    self.heartbeat.send(b"", zmq.NOBLOCK)
                except zmq.Again:
                    self.counts["heartbeats_dropped"] += 1  # the control process is not reading them
                next_hb = now + HEARTBEAT
            if self.wake in events:
                while self.wake.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self.wake.recv()
            while self.planner.done:
                ident, data = self.planner.done.popleft()
                self.router.send_multipart([ident, data])
                self.counts["follow"] += 1
            if self.sub is not None and self.sub in events:
                while self.sub.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    data = self.sub.recv()
                    self.sub_latest = (self.sub_latest[0] + 1, data)
            if self.router in events:
                batch = []
                for _ in range(256):
                    if not self.router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                        break
                    batch.append((time.monotonic(), self.router.recv_multipart()))
                for t_recv, frames in batch:
                    self.handle(t_recv, frames)

    def handle(self, t_recv: float, frames: list[bytes]) -> None:
        from robocell.errors import RobocellError
        from robocell.hardware.protocol import (
            Code, WireError, get_matrix, get_vector, pack, packed_reply, parse_request, reply, unpack,
        )
        from robocell.motion.trajectory import timed_trajectory

        make_cycles(CYCLES_PER_REQUEST)
        ident, raw = frames[0], frames[-1]
        rid = 0
        try:
            req = parse_request(unpack(raw))
            rid = req.id
            if req.op == "state":
                seq, packed = self.latest()
                self.router.send_multipart([ident, packed_reply(req.id, seq, packed)])
                self.counts["state"] += 1
                return
            if req.op == "servo" and self.servo is not None:
                body = reply(req.id, result={"seq": self.servo(req, t_recv)})
                self.counts["servo"] += 1
            elif req.op == "follow":
                n = len(self.p.names)
                t = req.args.get("t")
                if not isinstance(t, list) or not 1 <= len(t) <= 10_000:
                    raise WireError(Code.BAD_FIELD, "follow: field 't' must be a list of 1..10000 sample times (s)")
                traj = timed_trajectory(get_vector(req.args, "t", "follow", len(t)),
                                        get_matrix(req.args, "q", "follow", n, 10_000))
                try:
                    self.planner.jobs.put_nowait((ident, req.id, traj))
                except queue.Full:
                    raise WireError(Code.BUSY, f"follow: {PLAN_QUEUE} plans are waiting; retry later") from None
                return  # answered by the planner
            else:
                raise WireError(Code.UNKNOWN_OP, f"this benchmark server answers state, follow (and servo), not '{req.op}'")
        except WireError as exc:
            body = reply(rid, exc.code, exc.message)
            self.counts["error:" + exc.code.value] += 1
        except RobocellError as exc:
            body = reply(rid, Code.SAFETY, str(exc))
            self.counts["error:SAFETY"] += 1
        data = pack(body)
        self.cache[(ident, rid)] = data
        while len(self.cache) > REPLY_CACHE:
            self.cache.popitem(last=False)
        self.router.send_multipart([ident, data])


def start_threads(targets: list[tuple[str, Callable[[threading.Event], None]]],
                  running: threading.Event) -> list[threading.Thread]:
    """Start each target in its thread; one that raises ends the whole process with code 3."""
    def guarded(name: str, fn: Callable[[threading.Event], None]) -> Callable[[threading.Event], None]:
        def run(ev: threading.Event) -> None:
            try:
                fn(ev)
            except BaseException:  # noqa: BLE001 - a dead thread would skew the figures: fail loudly
                traceback.print_exc()
                print(f"thread {name} failed; the measurement is void", file=sys.stderr, flush=True)
                os._exit(3)
        return run

    out = []
    for name, fn in targets:
        th = threading.Thread(target=guarded(name, fn), args=(running,), name=name, daemon=True)
        th.start()
        out.append(th)
    return out


def ready(info: dict[str, Any]) -> None:
    print("READY " + json.dumps(info), flush=True)


# ---------------------------------------------------------------- roles
def role_server(a: argparse.Namespace) -> None:
    """A: the loop thread beside the command and planner threads, one process, as on main."""
    from robocell.hardware.drivers.sim import SimDriver
    from robocell.motion.kinematics_setup import arm_parts

    # fifo-all: the whole process real-time from the start, as `chrt --fifo 80 robocell serve`
    # (every thread inherits it); fifo: the control thread alone
    whole = apply_sched("fifo") if a.sched == "fifo-all" else None
    sys.setswitchinterval(0.0002)  # as robocell serve: the loop gets the GIL back within 0.2 ms
    p = parts()
    driver = SimDriver(p.spec, p.arm, seed=0)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = socket(ctx, zmq.ROUTER, bind=True, hwm=10_000)
    pub = socket(ctx, zmq.PUB, bind=True, hwm=16)
    wake = socket(ctx, zmq.PULL)
    wake_ep = f"inproc://bench-wake-{os.getpid()}"
    wake.bind(wake_ep)
    loop = TickLoop(driver, p, pub.send, a.max_ticks)
    inbox: collections.deque[tuple[int, np.ndarray, np.ndarray, float, float]] = collections.deque()
    _, cmd_kin, _ = arm_parts(next(x for x in p.spec.arms if x.name == p.arm))
    check = ServoCheck(Parts(p.spec, p.arm, cmd_kin, p.safety, p.base, p.names))  # the command thread's own solver

    def servo(req: Any, t_recv: float) -> int:
        from robocell.errors import RobocellError
        from robocell.hardware.protocol import WireError

        if req.lease == TOKEN:
            loop.last_heard = t_recv  # as ArmServer._handle: any message of the holder, before the checks
        try:
            seq, q, v, dt = check.check(req, t_recv, loop.executor.q_cmd.copy(), loop.q_meas)
        except (WireError, RobocellError) as exc:
            check.reject(exc)
            raise
        inbox.append((seq, q, v, dt, t_recv))  # ControlLoop.post: run at the start of the next tick
        return seq

    def take(now: float) -> None:
        while inbox:
            seq, q, v, dt, t_recv = inbox.popleft()
            loop.executor.servo(seq, q, v, dt, t_recv)

    planner = Planner(ctx, p, loop.q_meas.copy(), wake_ep)
    commands = Commands(ctx, p, router, lambda: (loop.seq, loop.latest_packed), planner, wake, servo=servo)
    heap = settle_heap()
    clock = GcClock()
    running = threading.Event()
    running.set()
    granted: list[str] = []

    def control(ev: threading.Event) -> None:
        granted.append(whole if whole is not None else apply_sched(a.sched))  # this thread only
        loop.run(take, lambda n: ev.is_set())

    ths = start_threads([("robocell-control", control), ("robocell-commands", commands.run),
                         ("robocell-planner", planner.run)], running)
    while not granted:
        time.sleep(0.01)  # start-up only: the control thread reports what it was granted
    ready({"servo": endpoint(router), "commands": endpoint(router), "state": endpoint(pub),
           "q0": loop.q_meas.tolist(), "sched": granted[0], "heap": heap, "threads": threads()})
    wait_for_stop()
    running.clear()
    for th in ths:
        th.join(timeout=5.0)
    driver.close()
    figs, arrays = loop.figures()
    gcs = clock.summary()  # one process: the loop's and the command side's collections are the same
    write(a.out, {**figs, "gc_loop": gcs, "gc_command": gcs, "heap": heap,
                  "commands": dict(commands.counts), "plans": planner.plans, "plan_errors": planner.plan_errors,
                  "plan_max_ms": planner.plan_max * 1e3, "rejected": check.rejected, "first_error": check.first_error,
                  "sched": granted[0], "cpu_s": time.process_time()}, arrays)
    ctx.destroy(linger=0)
    print("DONE", flush=True)


def role_control(a: argparse.Namespace) -> None:
    """B-E: the loop alone in its process; servo setpoints come straight to its own socket."""
    from robocell.errors import RobocellError
    from robocell.hardware.drivers.sim import SimDriver
    from robocell.hardware.protocol import WireError, parse_request, unpack

    p = parts()
    driver = SimDriver(p.spec, p.arm, seed=0)
    granted = apply_sched(a.sched)  # before the Context: its I/O thread inherits the policy
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    servo = socket(ctx, zmq.ROUTER, bind=True)
    servo.setsockopt(zmq.MAXMSGSIZE, MAX_SERVO_MESSAGE)
    pub = socket(ctx, zmq.PUB, bind=True, hwm=16)
    hb = socket(ctx, zmq.PULL, bind=True, hwm=100)
    loop = TickLoop(driver, p, pub.send, a.max_ticks)
    check = ServoCheck(p)
    ex = loop.executor
    command_heard = [0.0, 0.0]  # last heartbeat, longest silence between two heartbeats (s)

    def take(now: float) -> None:
        # Every setpoint in the socket at the start of the tick is applied in this tick: the
        # newest one wins, each is checked (the step check needs its predecessor).
        for _ in range(SERVO_BATCH):
            if not servo.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                break
            frames = servo.recv_multipart()
            try:
                req = parse_request(unpack(frames[-1]))
                if req.lease == TOKEN:
                    loop.last_heard = now  # any message of the holder, before the checks (as main)
                seq, q, v, dt = check.check(req, now, ex.q_cmd.copy(), loop.q_meas)
            except (WireError, RobocellError) as exc:
                check.reject(exc)
                continue
            ex.servo(seq, q, v, dt, now)
        while hb.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            hb.recv()
            if command_heard[0]:
                command_heard[1] = max(command_heard[1], now - command_heard[0])
            command_heard[0] = now

    heap = settle_heap()
    if a.nogc:
        gc.disable()
    clock = GcClock()
    ready({"servo": endpoint(servo), "state": endpoint(pub), "heartbeat": endpoint(hb),
           "q0": loop.q_meas.tolist(), "sched": granted, "heap": heap, "threads": threads()})
    rss0 = _rss()
    loop.run(take, lambda n: n % 50 != 0 or not stop_requested())
    rss1 = _rss()
    gcs = clock.summary()
    left = 0
    if a.nogc:
        gc.enable()
        left = gc.collect()  # the cyclic garbage the loop left while the collector was off
    driver.close()
    figs, arrays = loop.figures()
    write(a.out, {**figs, "gc_loop": gcs, "heap": heap, "rejected": check.rejected,
                  "first_error": check.first_error, "sched": granted, "cpu_s": time.process_time(),
                  "command_silence_max_ms": command_heard[1] * 1e3, "rss_growth_kib": rss1 - rss0,
                  "garbage_left": left}, arrays)
    ctx.destroy(linger=0)
    print("DONE", flush=True)


def role_sink(a: argparse.Namespace) -> None:
    """The transport floor: B-E's socket layout, but a receiver blocked in poll instead of a loop.

    Records when each servo setpoint arrives: what the client and ZeroMQ alone cost, the
    floor under any design that reads setpoints at the start of a tick.
    """
    from robocell.hardware.drivers.sim import SimDriver
    from robocell.hardware.protocol import unpack

    p = parts()
    driver = SimDriver(p.spec, p.arm, seed=0)  # for the start configuration the clients sway about
    q0 = np.asarray(driver.read().q, dtype=float).tolist()
    driver.close()
    granted = apply_sched(a.sched)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    servo = socket(ctx, zmq.ROUTER, bind=True)
    servo.setsockopt(zmq.MAXMSGSIZE, MAX_SERVO_MESSAGE)
    pub = socket(ctx, zmq.PUB, bind=True, hwm=16)
    hb = socket(ctx, zmq.PULL, bind=True, hwm=100)
    poller = zmq.Poller()
    poller.register(servo, zmq.POLLIN)
    poller.register(hb, zmq.POLLIN)
    poller.register(sys.stdin.fileno(), zmq.POLLIN)
    arrivals = np.full(a.max_ticks, np.nan)
    ready({"servo": endpoint(servo), "state": endpoint(pub), "heartbeat": endpoint(hb), "q0": q0,
           "sched": granted, "heap": settle_heap(), "threads": threads()})
    while True:
        events = dict(poller.poll(100))
        if servo in events:
            while servo.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                frames = servo.recv_multipart()
                t = time.monotonic()
                seq = int(unpack(frames[-1])["id"])
                if 0 < seq <= len(arrivals):
                    arrivals[seq - 1] = t
        while hb.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            hb.recv()
        if sys.stdin.fileno() in events and stop_requested():
            break
    write(a.out, {"sched": granted, "cpu_s": time.process_time()}, {"arrivals": arrivals})
    ctx.destroy(linger=0)
    print("DONE", flush=True)


def _rss() -> int:
    """Resident set size in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def role_command(a: argparse.Namespace) -> None:
    """B-E: the command and planner threads, without the loop; the state comes from the control process."""
    sys.setswitchinterval(0.0002)  # as robocell serve (a stop must not wait 5 ms behind the planner)
    p = parts()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = socket(ctx, zmq.ROUTER, bind=True, hwm=10_000)
    sub = socket(ctx, zmq.SUB, hwm=16)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(a.state)
    hb = socket(ctx, zmq.PUSH, hwm=100)
    hb.connect(a.heartbeat)
    wake = socket(ctx, zmq.PULL)
    wake_ep = f"inproc://bench-wake-{os.getpid()}"
    wake.bind(wake_ep)
    planner = Planner(ctx, p, np.asarray(json.loads(a.q0), dtype=float), wake_ep)
    holder: list[Commands] = []
    commands = Commands(ctx, p, router, lambda: holder[0].sub_latest, planner, wake, sub=sub, heartbeat=hb)
    holder.append(commands)
    heap = settle_heap()
    clock = GcClock()
    running = threading.Event()
    running.set()
    ths = start_threads([("robocell-commands", commands.run), ("robocell-planner", planner.run)], running)
    ready({"commands": endpoint(router), "heap": heap, "threads": threads()})
    wait_for_stop()
    running.clear()
    for th in ths:
        th.join(timeout=5.0)
    write(a.out, {"gc_command": clock.summary(), "heap": heap, "commands": dict(commands.counts),
                  "plans": planner.plans, "plan_errors": planner.plan_errors, "plan_max_ms": planner.plan_max * 1e3,
                  "cpu_s": time.process_time()})
    ctx.destroy(linger=0)
    print("DONE", flush=True)


def role_servo(a: argparse.Namespace) -> None:
    """Stream ``warmup + n`` setpoints at 1 kHz; the send times (monotonic s) go to ``--out``."""
    from robocell.hardware.drivers.sim import Pacer
    from robocell.hardware.protocol import VERSION, pack, unpack

    granted = apply_sched(a.sched, CLIENT_RT_PRIORITY)  # before the Context: its I/O thread inherits it
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    s = socket(ctx, zmq.DEALER)
    s.connect(a.endpoint)
    q0 = np.asarray(json.loads(a.q0), dtype=float)
    total = a.warmup + a.n
    sends = np.zeros(total)
    errors: collections.Counter[str] = collections.Counter()
    dropped = 0
    pacer = Pacer(0.001)
    for k in range(total):
        pacer.wait()
        target = q0.copy()
        target[0] += AMP * (1 - np.cos(2 * np.pi * 0.5 * k / 1000)) / 2
        msg = pack({"v": VERSION, "op": "servo", "id": k + 1, "deadline": 0.5, "lease": TOKEN,
                    "args": {"q": target.tolist(), "dt": 0.001, "seq": k + 1}})
        sends[k] = time.monotonic()
        try:
            s.send(msg, zmq.NOBLOCK)
        except zmq.Again:
            dropped += 1
        while s.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # alternative A answers every setpoint
            rep = unpack(s.recv())
            if rep.get("code") != "OK":
                errors[str(rep.get("msg"))[:120]] += 1
    write(a.out, {"dropped": dropped, "errors": dict(errors), "pacer_overruns": pacer.overruns, "sched": granted,
                  "cpu_s": time.process_time()},
          {"sends": sends, "warmup": np.asarray([a.warmup])})
    ctx.destroy(linger=0)


def role_load(a: argparse.Namespace) -> None:
    """Send ``rate`` requests/s (a 500-point follow every 50th, state reads otherwise), read the state stream."""
    from robocell.hardware.drivers.sim import Pacer
    from robocell.hardware.protocol import VERSION, pack, unpack

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    s = socket(ctx, zmq.DEALER, hwm=10_000)
    s.connect(a.commands)
    sub = socket(ctx, zmq.SUB, hwm=16)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(a.state)
    q0 = np.asarray(json.loads(a.q0), dtype=float)
    t = np.linspace(0.0, 5.0, 500)
    q = np.tile(q0, (len(t), 1))
    q[:, 0] += 0.1 * np.sin(2 * np.pi * t / 5.0)
    follow = {"t": t.tolist(), "q": q.tolist()}
    sent: dict[int, float] = {}
    rtt: list[float] = []
    codes: collections.Counter[str] = collections.Counter()
    states = skipped = 0
    pacer = Pacer(1.0 / a.rate)
    k = 0
    said_ready = False
    while True:
        k += 1
        if k % 100 == 0 and said_ready and stop_requested():
            break
        pacer.wait()
        if len(sent) < 64:  # bounded: a slow server sees a steady offered load, not a backlog
            op, args = ("follow", follow) if k % 50 == 0 else ("state", {})
            sent[k] = time.monotonic()
            s.send(pack({"v": VERSION, "op": op, "id": k, "deadline": 5.0, "args": args}))
        else:
            skipped += 1
        while s.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            rep = unpack(s.recv(), max_str=1 << 20)
            t0 = sent.pop(int(rep.get("id", 0)), None)
            if t0 is not None:
                rtt.append(time.monotonic() - t0)
            codes[str(rep.get("code"))] += 1
            if not said_ready:
                ready({})  # the first reply came back: the load is on
                said_ready = True
        while sub.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            sub.recv()
            states += 1
    r = np.asarray(rtt) if rtt else np.zeros(1)
    write(a.out, {"requests": k, "replies": len(rtt), "codes": dict(codes), "skipped": skipped, "states": states,
                  "rtt_p50_ms": float(np.median(r)) * 1e3, "rtt_p99_ms": float(np.percentile(r, 99)) * 1e3,
                  "cpu_s": time.process_time()})
    ctx.destroy(linger=0)
    print("DONE", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="role", required=True)
    for name in ("server", "control"):
        r = sub.add_parser(name)
        r.add_argument("--sched", default="normal",
                       choices=["normal", "fifo", "nice", *(["fifo-all"] if name == "server" else [])])
        r.add_argument("--max-ticks", type=int, default=400_000)
        r.add_argument("--out", required=True)
        if name == "control":
            r.add_argument("--nogc", action="store_true")
    r = sub.add_parser("sink")
    r.add_argument("--sched", default="normal", choices=["normal", "fifo", "nice"])
    r.add_argument("--max-ticks", type=int, default=400_000)
    r.add_argument("--out", required=True)
    r = sub.add_parser("command")
    r.add_argument("--state", required=True)
    r.add_argument("--heartbeat", required=True)
    r.add_argument("--q0", required=True)
    r.add_argument("--out", required=True)
    r = sub.add_parser("servo")
    r.add_argument("--endpoint", required=True)
    r.add_argument("--q0", required=True)
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--warmup", type=int, default=1000)
    r.add_argument("--sched", default="normal", choices=["normal", "fifo", "nice"])
    r.add_argument("--out", required=True)
    r = sub.add_parser("load")
    r.add_argument("--commands", required=True)
    r.add_argument("--state", required=True)
    r.add_argument("--q0", required=True)
    r.add_argument("--rate", type=float, default=2000.0)
    r.add_argument("--out", required=True)
    a = ap.parse_args()
    {"server": role_server, "control": role_control, "sink": role_sink, "command": role_command,
     "servo": role_servo, "load": role_load}[a.role](a)


if __name__ == "__main__":
    main()
