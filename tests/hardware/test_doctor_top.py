"""`robocell doctor` and `robocell top` as a user runs them: real servers, the CLI in a subprocess.

Outcomes only: exit codes, the sections and their verdicts, numbers that parse
and are ordered (p50 <= p99 <= max). How fast the host is never decides a
verdict that a test checks (timing figures only ever warn).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from robocell.hardware.sched import probe_fifo
from robocell.hardware.security import generate
from robocell.hardware.spawn import ServerProcess, wait_ready

from tests.conftest import ROOT, TABLETOP

CHECKS = ["address", "key files", "connectivity", "protocol", "encryption", "arm", "round trip", "state stream",
          "telemetry", "scheduling"]
TOP_FIELDS = ["mode", "faults", "uptime", "tick period", "late ticks", "watchdog margin", "lease", "connections",
              "queues", "messages", "scheduling"]


def robocell(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "robocell", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def doctor_json(*args: str) -> tuple[int, dict[str, Any]]:
    done = robocell("doctor", *args, "--json")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ordered(p: dict[str, float]) -> bool:
    return 0 < p["p50"] <= p["p99"] <= p["max"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(TABLETOP, "--watchdog", "0.5") as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    generate(d / "server")  # the server's folder: its keys and the allow-list
    generate(d / "other")  # another server's keys, and a valid client pair our server does not list

    def client_folder(name: str, server_key_from: str, pair_from: str) -> None:
        (d / name).mkdir()
        shutil.copy(d / server_key_from / "server.key", d / name / "server.key")
        for f in ("client.key", "client.key_secret"):
            shutil.copy(d / pair_from / f, d / name / f)

    client_folder("client", "server", "server")  # what a client gets: the server's public key, its own pair
    client_folder("unlisted", "server", "other")  # the right server key, a client key the server does not list
    client_folder("wrong_server_key", "other", "server")  # an authorised client, another server's public key
    return d


@pytest.fixture(scope="module")
def secure(keys: Path) -> Iterator[ServerProcess]:
    with ServerProcess(TABLETOP, "--keys", str(keys / "server"), "--watchdog", "0.5") as srv:
        yield srv


def test_doctor_on_a_healthy_server_passes_with_every_section(server: ServerProcess) -> None:
    code, report = doctor_json("--backend", server.endpoint)
    checks = by_name(report)
    assert code == 0 == report["exit_code"], report
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert {c["status"] for c in report["checks"]} <= {"pass", "warn"}, report  # warnings: timing, not real-time
    for name in ("address", "connectivity", "protocol", "encryption", "arm"):
        assert checks[name]["status"] == "pass", checks[name]
    rt = checks["round trip"]["data"]
    assert rt["samples"] == 200 and ordered(rt)
    stream = checks["state stream"]["data"]
    assert stream["states"] >= 3 and stream["nominal"] == pytest.approx(1 / 250)
    assert ordered(stream["server"]) and ordered(stream["arrival"])
    tel = checks["telemetry"]["data"]
    assert tel["ticks"] > 0 and tel["tick_p50"] <= tel["tick_p99"] <= tel["tick_max"]
    assert checks["protocol"]["data"]["version"] == 1
    sched = checks["scheduling"]["data"]
    assert sched["server"]["policy"] == "SCHED_OTHER" and checks["scheduling"]["status"] == "warn"
    assert "chrt --fifo" in checks["scheduling"]["advice"]


def test_doctor_text_report(server: ServerProcess) -> None:
    done = robocell("doctor", "--backend", server.endpoint, "--samples", "50")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"robocell doctor: {server.endpoint}"
    for name in CHECKS:
        assert any(re.match(rf"(PASS|WARN) +{name} ", line) for line in lines), (name, done.stdout)
    m = re.search(r"round trip +50 state requests: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", done.stdout)
    assert m is not None, done.stdout
    p50, p99, mx = map(float, m.groups())
    assert 0 < p50 <= p99 <= mx
    assert re.search(r"^doctor: \d+ passed, \d+ warned, 0 failed, 0 skipped; no failures \(exit 0\)$", done.stdout,
                     re.MULTILINE), done.stdout


def test_doctor_with_the_right_keys_passes(secure: ServerProcess, keys: Path) -> None:
    code, report = doctor_json("--backend", secure.endpoint, "--keys", str(keys / "client"))
    checks = by_name(report)
    assert code == 0, report
    assert checks["key files"]["status"] == "pass" and checks["key files"]["data"]["curve"] is True
    assert checks["encryption"]["status"] == "pass"
    assert "the handshake succeeded" in checks["encryption"]["summary"]
    assert checks["telemetry"]["status"] in ("pass", "warn") and checks["telemetry"]["data"]["ticks"] > 0


@pytest.mark.parametrize("folder,advice", [
    (None, "the server uses CURVE: pass --keys"),
    ("unlisted", "copy {keys}/unlisted/client.key into the server's authorized/ folder"),
    ("wrong_server_key", "{keys}/wrong_server_key/server.key is most likely not this server's public key"),
])
def test_doctor_with_missing_or_wrong_keys_fails_and_says_which(secure: ServerProcess, keys: Path,
                                                               folder: str | None, advice: str) -> None:
    args = ["--backend", secure.endpoint, "--connect-timeout", "1"]
    if folder is not None:
        args += ["--keys", str(keys / folder)]
    code, report = doctor_json(*args)
    checks = by_name(report)
    assert code == 1 == report["exit_code"], report
    conn = checks["connectivity"]
    assert conn["status"] == "fail" and "security handshake failed" in conn["summary"], conn
    assert advice.format(keys=keys) in conn["advice"], conn["advice"]
    assert all(checks[n]["status"] == "skip" for n in CHECKS[3:]), report


def test_doctor_where_nobody_serves_fails_with_advice() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    done = robocell("doctor", "--backend", address, "--connect-timeout", "1", timeout=60.0)
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert f"FAIL connectivity could not connect to the arm server at {address}" in text, text
    assert "nothing accepted a connection" in text and f"advice: nothing listens at {address}" in text, text
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args,message", [
    (["--backend", "sim"], "is not an arm server address"),
    (["--backend", "tcp://127.0.0.1"], "needs a host and a port"),
    (["--backend", "tcp://127.0.0.1:1", "--keys", "/nonexistent/keys"], "no such folder"),
    (["--backend", "tcp://127.0.0.1:1", "--connect-timeout", "0"], "--connect-timeout 0 s is outside"),
])
def test_doctor_user_mistakes_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from robocell.cli.main import main  # in this process: the CLI's own error path, without a server

    assert main(["doctor", *args]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err, err


def test_doctor_unusable_key_files_exit_2(keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from robocell.cli.main import main

    missing = tmp_path / "missing"
    missing.mkdir()
    shutil.copy(keys / "client" / "server.key", missing / "server.key")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(keys / "client", corrupt)
    (corrupt / "client.key_secret").write_text("not a certificate\n")
    for folder, message in ((missing, f"key file {missing / 'client.key_secret'} does not exist"),
                            (corrupt, f"key file {corrupt / 'client.key_secret'} is not a ZeroMQ certificate")):
        assert main(["doctor", "--backend", "tcp://127.0.0.1:1", "--keys", str(folder)]) == 2
        err = capsys.readouterr().err
        assert message in " ".join(err.split()) and "Traceback" not in err, err


def test_top_once_shows_the_fields(server: ServerProcess) -> None:
    done = robocell("top", "--backend", server.endpoint, "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for name in TOP_FIELDS:
        assert re.search(rf"^{name} +\S", out, re.MULTILINE), (name, out)
    p50, p99, mx = map(float, re.search(r"p50 ([\d.]+) ms +p99 ([\d.]+) ms +max ([\d.]+) ms", out).groups())  # type: ignore[union-attr]
    assert 0 < p50 <= p99 <= mx
    assert re.search(r"^mode +idle", out, re.MULTILINE) and re.search(r"^faults +none", out, re.MULTILINE)
    assert re.search(r"^lease +free", out, re.MULTILINE)
    assert "live" in out.splitlines()[-1]


class Lines:
    """A subprocess's stdout, line by line, waited on with deadlines (never a sleep)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        out = proc.stdout

        def pump() -> None:
            for line in out:
                self.q.put(line)
            self.q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, pattern: str, timeout: float) -> str:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            try:
                line = self.q.get(timeout=max(0.01, t_end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"{pattern!r} not printed within {timeout} s:\n" + "".join(self.seen[-40:]))


def test_top_shows_a_server_that_goes_away_and_ctrl_c_exits_0() -> None:
    srv = ServerProcess(TABLETOP, "--watchdog", "0.5").start()
    top = subprocess.Popen([sys.executable, "-m", "robocell", "top", "--backend", srv.endpoint],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = Lines(top)
        lines.wait_for(r"^tick period +p50", 60.0)  # a frame of telemetry (piped: frame after frame)
        srv.kill()
        lines.wait_for(rf"no telemetry from {re.escape(srv.endpoint)} for [\d.]+ s: the server stopped", 60.0)
        assert top.poll() is None  # still watching, waiting for it to come back
        top.send_signal(signal.SIGINT)
        _, err = top.communicate(timeout=60.0)
        assert top.returncode == 0, err
        assert "Traceback" not in err and "Aborted" not in err, err
    finally:
        srv.kill()
        if top.poll() is None:
            top.kill()
            top.wait(timeout=10)


def test_doctor_sees_a_real_time_control_thread() -> None:
    granted, why = probe_fifo(1)
    if not granted or shutil.which("chrt") is None:
        pytest.skip(f"this host cannot start a SCHED_FIFO server ({why}; chrt: {shutil.which('chrt')})")
    # priority 1, the lowest real-time one; the sim server sleeps between ticks, so it cannot hog the host
    proc = subprocess.Popen(["chrt", "--fifo", "1", sys.executable, "-m", "robocell", "serve", "--cell",
                             str(TABLETOP), "--bind", "tcp://127.0.0.1:0", "--watchdog", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        endpoint, _ = wait_ready(proc)
        code, report = doctor_json("--backend", endpoint, "--samples", "20")
        sched = by_name(report)["scheduling"]
        assert code == 0, report
        assert sched["status"] == "pass", sched
        assert sched["data"]["server"] == {**sched["data"]["server"], "policy": "SCHED_FIFO", "priority": 1,
                                           "realtime": True}
    finally:
        proc.kill()
        proc.wait(timeout=10)
