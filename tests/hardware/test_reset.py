"""`robocell reset` clears a watchdog stop on a served arm, and the latched-stop error names that command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from robocell.hardware.client import Connection
from robocell.hardware.spawn import ServerProcess

from tests.conftest import ROOT, TABLETOP
from tests.hardware.waiting import until

PROGRAM = ROOT / "examples" / "programs" / "pick_place_red.yaml"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    # watchdog 0.5 s: a killed client trips it all the same, and a loaded host does not (issue #12)
    with ServerProcess(TABLETOP, "--watchdog", "0.5", "--liveness", "0.5", "--lease-timeout", "0.3") as srv:
        yield srv


def robocell(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "robocell", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def trip_the_watchdog(server: ServerProcess, observer: Connection) -> None:
    """A controlling client starts a long motion and is SIGKILLed: the server stops the arm and latches."""
    victim = subprocess.Popen([sys.executable, "-m", "tests.hardware.victim", str(TABLETOP), server.endpoint],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "moving"
        until(observer.next_state, lambda s: s["mode"] == "moving", 30.0, "the victim's motion")
        os.kill(victim.pid, signal.SIGKILL)
        s = until(observer.next_state, lambda s: s["mode"] == "stopped", 30.0, "a watchdog stop")
        assert any("watchdog" in f for f in s["faults"]), s["faults"]
    finally:
        victim.kill()
        victim.wait(timeout=10)


def test_reset_after_a_watchdog_stop_then_a_run_succeeds(server: ServerProcess) -> None:
    observer = Connection(server.endpoint)
    try:
        trip_the_watchdog(server, observer)
        refused = robocell("run", str(PROGRAM), "--cell", str(TABLETOP), "--backend", server.endpoint)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        text = " ".join(refused.stderr.split())
        assert "latched protective stop" in text, text
        assert f"robocell reset --backend {server.endpoint}" in text, text  # the exact command to run

        done = robocell("reset", "--backend", server.endpoint)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"the arm at {server.endpoint} is 'idle' again" in done.stdout and "watchdog" in done.stdout
        s = observer.state()
        assert s["mode"] == "idle" and s["faults"] == [] and s["lease"] is None  # and the lease is released

        ran = robocell("run", str(PROGRAM), "--cell", str(TABLETOP), "--backend", server.endpoint)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "done" in ran.stdout
    finally:
        observer.close()


def test_reset_leaves_an_arm_that_is_not_stopped_alone(server: ServerProcess) -> None:
    done = robocell("reset", "--backend", server.endpoint)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is not stopped (mode 'idle'); nothing to reset" in done.stdout


def test_reset_never_takes_the_lease_from_a_live_client(server: ServerProcess) -> None:
    holder = Connection(server.endpoint)
    try:
        holder.acquire()  # alive: its heartbeats keep the lease
        holder.request("stop")  # latched, but the holder is the one to deal with it
        until(holder.next_state, lambda s: s["mode"] == "stopped", 30.0, "the stop")
        done = robocell("reset", "--backend", server.endpoint)
        assert done.returncode == 2, done.stdout + done.stderr
        text = " ".join(done.stderr.split())
        assert "Another client is controlling the arm" in text and "stop that program" in text, text
        assert holder.state()["mode"] == "stopped"
        holder.request("reset")  # the holder can
    finally:
        holder.close()


def test_reset_with_a_wrong_address_is_a_clear_error() -> None:
    done = robocell("reset", "--backend", "sim")
    assert done.returncode == 2 and "is not an arm server address" in done.stderr, done.stderr
