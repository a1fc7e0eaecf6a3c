"""Never half-alive: a server thread that dies stops the arm and ends the server, loudly.

In process: a driver kills the control thread or the command thread, a job kills the
planner thread; :meth:`ArmServer.wait` raises ServerFailure naming it, and the driver got
its stop.  Out of process: ``robocell serve`` with such a driver (loaded through the real
``robocell.drivers`` entry point) exits with status 1 and says why on stderr.  And the
other side: a driver *bug* on the command thread (an ordinary exception) is answered
INTERNAL, audited, the arm stopped, and the server keeps serving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import msgpack
import numpy as np
import pytest

from robocell.cellfile.spec import load_cell_spec
from robocell.errors import ServerFailure
from robocell.hardware.server import ArmServer

from tests.conftest import ROOT, TABLETOP
from tests.hardware.dying import DyingDriver, ThreadKill, install_entry_point, options
from tests.hardware.rawclient import RawClient


def _server(driver: DyingDriver, audit: Path | None = None) -> ArmServer:
    spec = load_cell_spec(TABLETOP)
    return ArmServer(spec, spec.arms[0].name, driver, bind="tcp://127.0.0.1:0", watchdog=2.0, lease_timeout=5.0,
                     audit=audit)


def _wait_failure(server: ArmServer) -> str:
    with pytest.raises(ServerFailure) as info:
        server.wait()  # returns only by raising, as soon as a thread is gone
    return str(info.value)


@pytest.fixture
def spec_arm() -> tuple[object, str]:
    spec = load_cell_spec(TABLETOP)
    return spec, spec.arms[0].name


def test_a_dead_control_thread_ends_wait_and_stops_the_arm(spec_arm: tuple[object, str]) -> None:
    spec, arm = spec_arm
    driver = DyingDriver(spec, arm, die_in="control")  # type: ignore[arg-type]
    with _server(driver) as srv, closing(RawClient(srv.endpoint, timeout=10.0)) as c:
        c.acquire()
        assert c.call("gripper", {"action": "open"})["ok"]  # arms the driver: its next read raises
        why = _wait_failure(srv)
        assert "control loop died" in why and "failed on purpose" in why and "arm was stopped" in why
        assert driver.stops >= 1  # the control loop's own failure path stopped the driver
    assert driver.stops >= 2  # and close() did again


def test_a_dead_command_thread_ends_wait_and_stops_the_arm(spec_arm: tuple[object, str]) -> None:
    spec, arm = spec_arm
    driver = DyingDriver(spec, arm, die_in="commands")  # type: ignore[arg-type]
    with _server(driver) as srv, closing(RawClient(srv.endpoint, timeout=10.0)) as c:
        c.acquire()
        q = np.asarray(c.call("state")["result"]["q_cmd"])
        rep = c.call("move_joints", {"q": (q + np.r_[0.5, np.zeros(6)]).tolist(), "speed": 0.2})
        assert rep["ok"], rep
        assert c.call("gripper", {"action": "open"})["ok"]  # arms it: gripper read info before arming
        c.sock.send(msgpack.packb(c.msg("hello")))  # hello reads driver.info: the thread dies
        why = _wait_failure(srv)
        assert "command thread died" in why and "ThreadKill" in why
        # the running motion was stopped by a controlled deceleration (the control loop still ran)
        assert srv.control.latched and any("server failure" in f for f in srv.control.faults)
        m = srv.control.motions[rep["result"]["motion"]]
        assert m.status.value == "cancelled"
    assert driver.stops >= 1  # close(): the driver's own stop after the control thread ended


def test_a_dead_planner_thread_ends_wait(spec_arm: tuple[object, str]) -> None:
    spec, arm = spec_arm
    driver = DyingDriver(spec, arm)  # type: ignore[arg-type]
    with _server(driver) as srv:
        def kill() -> None:
            raise ThreadKill("the planner thread was killed by the test")

        fut = srv.planner.submit(kill)
        with pytest.raises(RuntimeError, match="planner thread died"):
            fut.result(timeout=10)
        why = _wait_failure(srv)
        assert "planner thread died" in why
        assert srv.control.latched  # stopped (and latched) although nothing moved
    assert driver.stops >= 1


class BuggyDriver(DyingDriver):
    """A driver with an ordinary bug in a call the command thread waits for."""

    def object_poses(self) -> dict[str, np.ndarray]:
        raise KeyError("a bug in the driver")


def test_a_bug_while_handling_a_message_is_answered_internal_and_the_server_goes_on(
        spec_arm: tuple[object, str], tmp_path: Path) -> None:
    spec, arm = spec_arm
    driver = BuggyDriver(spec, arm)  # type: ignore[arg-type]
    audit = tmp_path / "audit.jsonl"
    with _server(driver, audit) as srv, closing(RawClient(srv.endpoint, timeout=10.0)) as c:
        rep = c.call("world")
        assert rep["code"] == "INTERNAL" and "the arm was stopped" in rep["msg"], rep
        assert srv.failure() is None  # every thread still runs
        assert c.call("hello")["ok"]  # and still answers
        t_end = time.monotonic() + 10
        while c.call("state")["result"]["mode"] != "stopped":
            assert time.monotonic() < t_end
        assert c.call("stats")["result"]["messages"]["internal"] == 1
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert any(e["op"] == "world" and e["code"] == "INTERNAL" and "KeyError" in e["reason"] for e in lines)


@pytest.fixture
def plugin_path(tmp_path: Path) -> dict[str, str]:
    folder = install_entry_point(tmp_path / "plugins")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]), "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("die_in", ["control", "commands"])
def test_robocell_serve_exits_1_and_says_why_when_a_thread_dies(plugin_path: dict[str, str], tmp_path: Path,
                                                               die_in: str) -> None:
    from robocell.hardware.spawn import wait_ready

    marker = tmp_path / "stops"
    proc = subprocess.Popen(
        [sys.executable, "-m", "robocell", "serve", "--cell", str(TABLETOP), "--bind", "tcp://127.0.0.1:0",
         "--driver", "dying", *options(die_in=die_in, marker=marker), "--watchdog", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plugin_path, cwd=tmp_path)
    try:
        endpoint, _ = wait_ready(proc)
        with closing(RawClient(endpoint, timeout=10.0)) as c:
            c.acquire()
            assert c.call("gripper", {"action": "open"})["ok"]  # arms the driver
            if die_in == "commands":
                c.sock.send(msgpack.packb(c.msg("hello")))
            code = proc.wait(timeout=60)
        err = proc.stderr.read() if proc.stderr is not None else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert code == 1, err
    what = "control loop died" if die_in == "control" else "command thread died"
    assert what in err and "exiting with status 1" in err and "the arm was stopped" in err, err
    assert "Traceback" not in err, err  # a sentence, not a bare traceback
    assert marker.read_text().count("stop") >= 1  # the driver got its stop
