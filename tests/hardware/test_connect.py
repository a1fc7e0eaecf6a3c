"""A client started before its server waits for it (connect deadline); one that finds none says so plainly."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest

from robocell.errors import ConnectionLost
from robocell.hardware.client import Connection
from robocell.hardware.spawn import ServerProcess

from tests.conftest import ROOT, TABLETOP

PROGRAM = ROOT / "examples" / "programs" / "pick_place_red.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def robocell(*args: str) -> list[str]:
    return [sys.executable, "-m", "robocell", *args]


def test_run_started_before_the_server_waits_for_it_and_succeeds() -> None:
    """The README's quick start: `robocell serve ... &` and at once `robocell run ... --backend tcp://...`."""
    port, state_port = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    # Hold the port with a plain listener first: when the client's connection arrives there, the
    # client is provably trying before any server exists (an event, not a guess about start-up times).
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client = subprocess.Popen(robocell("run", str(PROGRAM), "--cell", str(TABLETOP), "--backend", address),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = ServerProcess(TABLETOP, "--watchdog", "0.5", "--liveness", "0.5", bind=address,
                           state_bind=f"tcp://127.0.0.1:{state_port}")
    try:
        listener.settimeout(120.0)
        conn, _ = listener.accept()  # the client is connecting
        conn.close()
        listener.close()  # now nothing listens: the client is refused until the server is up
        # --watchdog 0.5: a loaded host must not starve the client's heartbeats into a stop (issue #12)
        server.start()
        assert client.poll() is None, client.communicate()[0]  # still waiting, not given up
        out, _ = client.communicate(timeout=240)
    finally:
        listener.close()
        if client.poll() is None:
            client.kill()
            client.wait(timeout=10)
        server.kill()
    assert client.returncode == 0, out
    assert "done" in out, out


def test_no_server_gives_a_plain_message_within_the_connect_deadline() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(ConnectionLost) as err:
        Connection(address, connect_timeout=1.0)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 30.0  # it waited the deadline it was given, and not the 30 s default
    text = str(err.value)
    assert f"could not connect to the arm server at {address} within the connect deadline of 1 s" in text
    assert "no keys" in text and "nothing accepted a connection" in text
    for cause in ("not running", "port", "keys do not match", "--connect-timeout"):
        assert cause in text, text
    assert "from the arm server" not in text


def test_cli_no_server_exits_2_with_the_plain_message() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    done = subprocess.run(robocell("run", str(PROGRAM), "--cell", str(TABLETOP), "--backend", address,
                                   "--connect-timeout", "1"), capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2, done.stdout + done.stderr
    text = " ".join(done.stderr.split())
    assert f"could not connect to the arm server at {address} within the connect deadline of 1 s" in text, text
    assert "Traceback" not in done.stderr


def test_connect_timeout_is_checked() -> None:
    from robocell.errors import ConfigError

    with pytest.raises(ConfigError, match="connect timeout = 0 s is outside"):
        Connection("tcp://127.0.0.1:1", connect_timeout=0)


def test_lost_command_message_reads_plainly() -> None:
    """A command to a server that went away: which command, which server, what happened (no garbling)."""
    with ServerProcess(TABLETOP) as srv:
        conn = Connection(srv.endpoint, timeout=0.5)
        try:
            srv.kill()
            with pytest.raises(ConnectionLost) as err:
                conn.request("world")
            text = str(err.value)
            # whether ZeroMQ noticed the closed connection before the request was sent is a race
            assert re.match(f"'world': the arm server at {re.escape(srv.endpoint)} (did not reply|was not "
                            "connected) within the command's deadline of 0.500 s; the command was not resent",
                            text), text
            with pytest.raises(ConnectionLost) as err:
                conn.request("world")  # reconnects: the request timeout, not the first connect's deadline
            assert "within the request timeout (reconnecting after a lost connection) of 0.5 s" in str(err.value)
        finally:
            conn.close()
