"""``robocell serve --control process``: the control loop in its own process (docs/realtime.md §5).

Real processes, loopback, random ports; each failure case is judged by what the processes do
(exit status, stderr) and by the server's own state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from robocell.core.cell import Cell
from robocell.hardware.client import Connection
from robocell.hardware.protocol import VERSION
from robocell.hardware.spawn import ServerProcess

from tests.conftest import TABLETOP
from tests.hardware.rawclient import RawClient
from tests.hardware.waiting import until

ROOT = Path(__file__).resolve().parents[2]
WATCHDOG = 0.05


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def _control_pid(srv: ServerProcess) -> int:
    assert srv.proc is not None
    kids = [k for k in _children(srv.proc.pid) if "control_main" in Path(f"/proc/{k}/cmdline").read_text()]
    assert len(kids) == 1, kids
    return kids[0]


def _gone(pid: int, timeout: float) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # exited (a zombie until its parent reaps it)
        except OSError:
            return True
        time.sleep(0.01)  # polling a process's exit: /proc offers no event
    return False


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    with ServerProcess(TABLETOP, "--control", "process", "--realtime", "auto", "--watchdog", str(WATCHDOG),
                       "--rate", "1e6") as srv:
        yield srv


@pytest.fixture
def patient() -> Iterator[ServerProcess]:
    """A control-process server whose watchdog leaves a raw client (no heartbeats) in control."""
    with ServerProcess(TABLETOP, "--control", "process", "--realtime", "auto", "--watchdog", "5",
                       "--lease-timeout", "10") as srv:
        yield srv


def _state(conn: Connection, cond, timeout: float, what: str) -> dict:
    return until(conn.next_state, cond, timeout, what)


@pytest.mark.timeout(120)
def test_hello_offers_the_realtime_socket_and_a_client_moves_and_servos(server: ServerProcess) -> None:
    cell = Cell.load(TABLETOP, server.endpoint)
    try:
        arm = cell.arm()
        conn = arm.conn  # type: ignore[attr-defined]
        assert conn.info["control"] == "process"
        assert conn.info["rt_endpoint"].startswith("tcp://127.0.0.1:")
        assert conn.info["scheduling"] in ("normal", "nice -20") or conn.info["scheduling"].startswith("fifo ")
        q0 = arm.state().q.copy()
        q1 = q0.copy()
        q1[0] += 0.2
        arm.move_joints(q1, speed=0.5)
        np.testing.assert_allclose(arm.state().q, q1, atol=0.01)
        target = q1.copy()
        for _ in range(300):  # 0.3 rad/s at 1 kHz, pipelined: to the realtime socket, no replies
            target[0] -= 0.0003
            arm.servo(target, dt=0.001, wait=False)
            time.sleep(0.001)  # the stream's pacing, not synchronisation
        conn.flush()
        s = _state(conn, lambda s: abs(s["q_cmd"][0] - target[0]) < 1e-3, 5.0, "the last setpoint tracked")
        assert s["servo_seq"] > 0 and not s["faults"]
        stats = conn.request("stats")
        assert stats["control"] == "process" and stats["servo"]["received"] >= 250
    finally:
        cell.close()


@pytest.mark.timeout(120)
def test_sigkill_of_the_control_process_makes_serve_exit_1_with_the_reason(server: ServerProcess) -> None:
    assert server.proc is not None
    os.kill(_control_pid(server), signal.SIGKILL)
    out, _ = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 1
    assert "the control process exited with signal 9" in out, out[-2000:]


@pytest.mark.timeout(120)
def test_sigkill_of_the_command_process_stops_the_arm_and_the_control_process_exits(patient: ServerProcess) -> None:
    server = patient
    assert server.proc is not None
    child = _control_pid(server)
    c = RawClient(server.endpoint)
    sub = c.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(server.state_endpoint)
    try:
        c.acquire()
        q = np.asarray(c.call("state")["result"]["q_cmd"])
        q[0] += 1.0
        assert c.call("move_joints", {"q": q.tolist(), "speed": 0.3})["ok"]

        def next_state() -> dict:
            assert sub.poll(5000)
            return msgpack.unpackb(sub.recv(), raw=False)

        until(next_state, lambda s: s["mode"] == "moving" and abs(s["qd"][0]) > 0.05, 5.0, "moving")
        server.proc.kill()  # the command process; its child reads EOF on its pipe
        server.proc.wait(timeout=10)
        # the control process decelerates (the state stream shows it stopped), then exits
        s = until(next_state, lambda s: s["mode"] == "stopped", 5.0, "a stop")
        assert any("command process exited" in f for f in s["faults"]), s["faults"]
        last = s
        while sub.poll(1000):  # the stream ends with the process, after the deceleration
            last = msgpack.unpackb(sub.recv(), raw=False)
        assert last["mode"] == "stopped" and abs(last["qd"][0]) < 0.05, last
        assert _gone(child, 10.0)
    finally:
        sub.close(linger=0)
        c.close()


@pytest.mark.timeout(120)
def test_watchdog_stops_a_sigkilled_client_within_its_deadline(server: ServerProcess) -> None:
    observer = Connection(server.endpoint, timeout=2.0)
    victim = subprocess.Popen([sys.executable, "-m", "tests.hardware.victim", str(TABLETOP), server.endpoint,
                               "motion", "heartbeat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "moving"
        _state(observer, lambda s: s["mode"] == "moving" and max(map(abs, s["qd"])) > 0.05, 5.0, "motion")
        os.kill(victim.pid, signal.SIGKILL)
        s = _state(observer, lambda s: s["mode"] == "stopped", 2.0, "a protective stop")
        assert any("watchdog" in f for f in s["faults"]), s["faults"]
        events = observer.request("stats")["watchdog"]
        assert len(events) == 1
        assert events[0]["silent"] - events[0]["stalled"] <= WATCHDOG + 0.010, events[0]
    finally:
        victim.kill()
        victim.wait(timeout=10)
        observer.close()


@pytest.mark.timeout(120)
def test_stop_on_the_realtime_socket_while_the_command_socket_is_flooded(server: ServerProcess) -> None:
    c = RawClient(server.endpoint)
    rt = RawClient(_rt_endpoint(c))
    flooding = threading.Event()
    flooding.set()

    def flood() -> None:
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 100_000)
        s.connect(server.endpoint)
        big = msgpack.packb({"v": VERSION, "op": "hello", "id": 1, "deadline": 10.0,
                             "args": {"client": "x" * 200}}, use_bin_type=True)
        while flooding.is_set():
            for _ in range(200):
                try:
                    s.send(big, zmq.NOBLOCK)
                except zmq.Again:
                    break
            time.sleep(0.001)  # yield the GIL to the other flooders
        s.close(linger=0)
        ctx.term()

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
    try:
        c.acquire()
        q = np.asarray(c.call("state")["result"]["q_cmd"])
        q[0] += 1.0
        assert c.call("move_joints", {"q": q.tolist(), "speed": 0.3})["ok"]
        for t in threads:
            t.start()
        time.sleep(0.3)  # let the flood build up a backlog (the load, not synchronisation)
        t_sent = time.monotonic()
        rep = rt.call("stop", {"reason": "flooded"}, lease=False)
        assert rep["ok"], rep
        answered = time.monotonic() - t_sent
        assert answered < 1.0  # within a tick or so on a quiet host; generous for a loaded one
        sub = c.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(server.state_endpoint)

        def next_state() -> dict:
            assert sub.poll(5000)
            return msgpack.unpackb(sub.recv(), raw=False)

        try:
            s = until(next_state, lambda s: s["mode"] == "stopped", 5.0, "stopped")
        finally:
            sub.close(linger=0)
        assert any("flooded" in f for f in s["faults"]), s["faults"]
    finally:
        flooding.clear()
        for t in threads:
            t.join(timeout=5)
        c.close()
        rt.close()


def _rt_endpoint(c: RawClient) -> str:
    rep = c.call("hello")
    assert rep["ok"], rep
    return str(rep["result"]["rt_endpoint"])


@pytest.mark.timeout(120)
def test_curve_on_the_realtime_and_state_sockets(tmp_path: Path) -> None:
    from robocell.hardware.security import generate, load_client_keys

    generate(tmp_path)
    with ServerProcess(TABLETOP, "--control", "process", "--realtime", "off", "--keys", str(tmp_path),
                       "--watchdog", "0.5") as srv:
        conn = Connection(srv.endpoint, keys=load_client_keys(tmp_path), timeout=5.0)
        try:
            assert conn.info["scheduling"] == "normal"  # --realtime off
            conn.acquire()
            q = np.asarray(conn.state()["q_cmd"], dtype=float)
            for k in range(100):
                q[0] += 0.0002
                conn.send_nowait("servo", {"q": q.tolist(), "dt": 0.002, "seq": k + 1})
                time.sleep(0.002)  # the stream's pacing, not synchronisation
            conn.flush()
            s = _state(conn, lambda s: s["servo_seq"] == 100, 5.0, "the last setpoint applied")
            assert not s["faults"]
        finally:
            conn.close()
        # a client without keys gets nothing from the realtime socket (CURVE refuses it)
        ctx = zmq.Context()
        try:
            d = ctx.socket(zmq.DEALER)
            d.setsockopt(zmq.LINGER, 0)
            d.connect(_rt_endpoint_of(srv, tmp_path))
            d.send(msgpack.packb({"v": VERSION, "op": "stop", "id": 7, "deadline": 1.0}, use_bin_type=True))
            assert not d.poll(500)
            d.close(linger=0)
        finally:
            ctx.term()


def _rt_endpoint_of(srv: ServerProcess, keys: Path) -> str:
    from robocell.hardware.security import load_client_keys

    conn = Connection(srv.endpoint, keys=load_client_keys(keys), timeout=5.0)
    try:
        return str(conn.info["rt_endpoint"])
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_a_hung_control_process_is_killed_and_serve_exits_1(server: ServerProcess) -> None:
    assert server.proc is not None
    os.kill(_control_pid(server), signal.SIGSTOP)  # alive, not ticking: as a driver call that blocks
    out, _ = server.proc.communicate(timeout=30)
    assert server.proc.returncode == 1
    assert "published no state" in out and "hung" in out, out[-2000:]
