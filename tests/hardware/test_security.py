"""CURVE on both sockets with an allow-list: NULL and unlisted clients get nothing through."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from robocell.core.cell import Cell
from robocell.errors import BackendError, ConfigError, ConnectionLost
from robocell.hardware.client import Connection
from robocell.hardware.security import ClientKeys, generate, is_loopback, load_client_keys

from tests.conftest import TABLETOP
from robocell.hardware.spawn import ServerProcess


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    generate(d)
    generate(d / "intruder")  # a valid key pair that is not on the allow-list
    return d


@pytest.fixture(scope="module")
def secure(keys: Path, tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    # watchdog 0.5 s: these tests are about keys; a loaded host must not starve the heartbeats into a stop
    with ServerProcess(TABLETOP, "--keys", str(keys), "--audit", str(audit), "--watchdog", "0.5",
                       "--liveness", "0.5") as srv:
        srv.audit = audit  # type: ignore[attr-defined]
        yield srv


def test_authorised_client_controls_the_arm(secure: ServerProcess, keys: Path) -> None:
    with Cell.load(TABLETOP, secure.endpoint, keys=str(keys), timeout=5.0) as cell:
        arm = cell.arm()
        q = arm.state().q.copy()
        q[0] += 0.05
        assert arm.move_joints(q).completed


def test_null_and_unlisted_clients_get_nothing(secure: ServerProcess, keys: Path) -> None:
    # each says why: the server's handshake refused it (connect_timeout: a working server answers at once)
    with pytest.raises(BackendError, match="could not connect.*no keys.*handshake failed.*runs with --keys"):
        Cell.load(TABLETOP, secure.endpoint, timeout=0.5, connect_timeout=1.0)  # NULL mechanism
    intruder = load_client_keys(keys / "intruder")
    with pytest.raises(ConnectionLost, match=f"CURVE keys from {keys / 'intruder'}.*handshake failed.*not in the server's authorized/ folder"):
        Connection(secure.endpoint, keys=intruder, timeout=0.5, connect_timeout=1.0)  # CURVE, but not on the list

    # the state stream refuses them too: a NULL and an unlisted subscriber receive nothing
    ctx = zmq.Context()
    try:
        subs = []
        for k in (None, intruder):
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.LINGER, 0)
            if k is not None:
                s.curve_secretkey, s.curve_publickey, s.curve_serverkey = k.secret, k.public, k.server_public
            s.setsockopt(zmq.SUBSCRIBE, b"")
            s.connect(secure.state_endpoint)
            subs.append(s)
        for s in subs:
            assert s.poll(500) == 0
        good = ctx.socket(zmq.SUB)
        good.setsockopt(zmq.LINGER, 0)
        ok = load_client_keys(keys)
        good.curve_secretkey, good.curve_publickey, good.curve_serverkey = ok.secret, ok.public, ok.server_public
        good.setsockopt(zmq.SUBSCRIBE, b"")
        good.connect(secure.state_endpoint)
        assert good.poll(5000) != 0  # the same stream does reach an authorised client
    finally:
        ctx.destroy(linger=0)

    # zero commands accepted from anyone but the authorised key
    allowed = ok.public.decode()
    entries = [json.loads(line) for line in secure.audit.read_text().splitlines()]  # type: ignore[attr-defined]
    assert entries, "the audit log is empty"
    commands = [e for e in entries if e["op"] != "auth"]
    assert all(e["key"] in (allowed, "server") for e in commands), {e["key"] for e in commands}
    assert any(e["key"] == allowed and e["ok"] for e in entries)
    # every refused handshake is audited: a client without keys, or with the wrong server key (as
    # `intruder` has: its folder has a server key of its own), by the socket's handshake-failed event
    refused = [e for e in entries if e["op"] == "auth"]
    assert all(not e["ok"] and e["code"] == "AUTH_FAILED" for e in refused), refused
    assert "unauthenticated" in {e["key"] for e in refused}, refused


def test_an_unlisted_key_is_refused_and_audited_by_name(secure: ServerProcess, keys: Path) -> None:
    intruder = load_client_keys(keys / "intruder")
    unlisted = ClientKeys(intruder.public, intruder.secret, load_client_keys(keys).server_public)  # right server key
    with pytest.raises(ConnectionLost, match="handshake failed"):
        Connection(secure.endpoint, keys=unlisted, timeout=0.5, connect_timeout=1.0)
    t_end = time.monotonic() + 10
    while True:
        entries = [json.loads(line) for line in secure.audit.read_text().splitlines()]  # type: ignore[attr-defined]
        named = [e for e in entries if e["op"] == "auth" and e["key"] == intruder.public.decode()]
        if named or time.monotonic() > t_end:
            break
        time.sleep(0.05)  # not synchronisation: polling a file another process writes, with a deadline
    assert named and "not in" in named[0]["reason"] and named[0]["code"] == "AUTH_FAILED", named


def test_audit_lines_name_key_time_and_reason(secure: ServerProcess, keys: Path) -> None:
    conn = Connection(secure.endpoint, keys=load_client_keys(keys), timeout=5.0)
    try:
        conn.acquire()
        bad = np.zeros(7)
        bad[3] = 5.0
        with pytest.raises(Exception, match="outside the safety limits"):
            conn.request("move_joints", {"q": bad.tolist()})
    finally:
        conn.close()
    last = [json.loads(x) for x in secure.audit.read_text().splitlines() if '"move_joints"' in x][-1]  # type: ignore[attr-defined]
    assert last["ok"] is False and last["code"] == "SAFETY" and "outside the safety limits" in last["reason"]
    assert last["key"] == load_client_keys(keys).public.decode() and last["t"] > 1.7e9


def test_keys_are_never_overwritten(keys: Path) -> None:
    with pytest.raises(ConfigError, match="exists already"):
        generate(keys)


@pytest.mark.parametrize("endpoint,expected", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:1", True), ("tcp://[::1]:5", True),
    ("ipc:///tmp/x", True), ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False), ("tcp://10.0.0.2:1", False),
])
def test_loopback_detection(endpoint: str, expected: bool) -> None:
    assert is_loopback(endpoint) is expected


def test_cli_runs_a_program_on_the_secured_remote_arm(secure: ServerProcess, keys: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from robocell.cli.main import main

    from tests.conftest import ROOT

    program = ROOT / "examples" / "programs" / "pick_place_red.yaml"
    code = main(["run", str(program), "--cell", str(TABLETOP), "--backend", secure.endpoint, "--keys", str(keys)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "pick_and_place" in out.out and "done" in out.out
    # a simulator-only option is refused with a clear message, not ignored
    assert main(["run", str(program), "--cell", str(TABLETOP), "--backend", secure.endpoint,
                 "--keys", str(keys), "--seed", "3"]) == 2
    assert "randomises a simulated cell" in capsys.readouterr().err
