"""Dead clients and dead servers: the arm stops and latches; the client raises, reconnects, never resends.

The killed clients here keep their lease with application heartbeats (the server's ``--watchdog``);
clients on a liveness connection are tested in test_chaos_liveness.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from robocell.core.cell import Cell
from robocell.errors import ConnectionLost
from robocell.hardware.client import Connection

from tests.conftest import ROOT, TABLETOP
from robocell.hardware.spawn import ServerProcess
from tests.hardware.waiting import until

WATCHDOG = 0.05  # the server's default: these tests are about the watchdog itself


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """A server with the default watchdog (conftest's raises it for tests about other things)."""
    with ServerProcess(TABLETOP, "--lease-timeout", "0.3") as srv:
        yield srv


def _until(conn: Connection, cond: Any, timeout: float, what: str) -> dict[str, Any]:
    return until(conn.next_state, cond, timeout, what)


@pytest.mark.parametrize("kind", ["motion", "servo"])
def test_sigkilled_client_mid_motion_stops_and_latches(server: ServerProcess, kind: str) -> None:
    observer = Connection(server.endpoint, timeout=2.0)
    try:
        assert observer.info["watchdog"] == pytest.approx(WATCHDOG)  # robocell serve's default
        _until(observer, lambda s: s["lease"] is None, 3.0, "a free lease")
        if observer.state()["mode"] != "idle":
            observer.acquire()
            t_end = time.monotonic() + 3
            while observer.state()["mode"] != "idle" and time.monotonic() < t_end:
                try:
                    observer.request("reset")
                except Exception:  # noqa: BLE001 - BUSY while decelerating; retry until the deadline
                    observer.next_state()
            observer.release()
        victim = subprocess.Popen(
            [sys.executable, "-m", "tests.hardware.victim", str(TABLETOP), server.endpoint, kind, "heartbeat"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        try:
            assert victim.stdout is not None
            assert victim.stdout.readline().strip() == "moving"
            mode = "moving" if kind == "motion" else "servo"
            _until(observer, lambda s: s["mode"] == mode and max(map(abs, s["qd"])) > 0.05, 5.0, "motion")
            n_events = len(observer.request("stats")["watchdog"])
            os.kill(victim.pid, signal.SIGKILL)
            killed = time.monotonic()
            s = _until(observer, lambda s: s["mode"] == "stopped", 2.0, "a protective stop")
            assert time.monotonic() - killed < 1.0
            assert any("watchdog" in f for f in s["faults"]), s["faults"]
            s = _until(observer, lambda s: max(map(abs, s["qd"])) < 0.01, 3.0, "the arm at rest")
            events = observer.request("stats")["watchdog"][n_events:]
            assert len(events) == 1
            # stop commanded within deadline + 10 ms of the server's running time: a loaded host that
            # deschedules the server after the deadline delays the stop, and reports that as stalled
            assert events[0]["silent"] - events[0]["stalled"] <= WATCHDOG + 0.010, events[0]
            # latched: still stopped a while later, and nobody's motion resumes
            q_rest = np.asarray(s["q"])
            for _ in range(25):
                s = observer.next_state()
            assert s["mode"] == "stopped"
            np.testing.assert_allclose(s["q"], q_rest, atol=2e-3)
        finally:
            victim.kill()
            victim.wait(timeout=10)
    finally:
        observer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_killed_server_gives_connection_lost_then_reconnect_without_moving() -> None:
    bind, state = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    srv = ServerProcess(TABLETOP, "--watchdog", "0.5", "--liveness", "0.5", bind=bind, state_bind=state).start()
    timeout = 0.5
    try:
        cell = Cell.load(TABLETOP, bind, timeout=timeout)
    except BaseException:
        srv.kill()  # it holds fixed ports: never leave it running
        raise
    try:
        arm = cell.arm()
        q = arm.state().q.copy()
        q[0] += 1.0
        handle = arm.move_joints(q, wait=False, speed=0.3)
        assert not handle.done()
        srv.kill()
        t0 = time.monotonic()
        with pytest.raises(ConnectionLost, match="deadline|stale|stopped advancing|liveness connection"):
            handle.wait()
        assert time.monotonic() - t0 <= 2 * timeout + 0.2  # within the deadline (stale state, then no reply)
        with pytest.raises(ConnectionLost):
            arm.move_joints(q)  # server still down: raises, and the command is dropped, not queued
        srv = ServerProcess(TABLETOP, "--watchdog", "0.5", "--liveness", "0.5", bind=bind, state_bind=state).start()
        s0 = arm.state()  # reconnects: hello, fresh state, lease re-taken
        assert s0.mode.value == "idle"
        assert cell.backend.conn.lease is not None  # type: ignore[attr-defined]
        home = np.asarray(cell.spec.arms[0].arm_model().home)
        np.testing.assert_allclose(s0.q, home, atol=0.01)  # the new server's arm, not moved
        conn = cell.backend.conn  # type: ignore[attr-defined]
        for _ in range(50):  # ~0.2 s of states: nothing was resent
            s = conn.next_state()
            assert s["motion"] is None and s["mode"] == "idle"
        np.testing.assert_allclose(arm.state().q, s0.q, atol=1e-3)
        small = s0.q.copy()
        small[0] += 0.05
        assert arm.move_joints(small).completed  # and it works again
    finally:
        cell.close()
        srv.kill()
