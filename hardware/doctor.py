"""``robocell doctor``'s checks of a served arm, each ending in pass, warn or fail with plain advice.

In order: the address, the key files, connectivity (how far it got, in the
words of :mod:`robocell.hardware.connect`), the protocol version, encryption,
the arm's mode, the round-trip latency of ``state`` requests, the state
stream's period and jitter, the server's telemetry (docs/protocol.md §5b) and
real-time scheduling (this host's, and the server's control thread's).

Verdicts: **fail** means something does not work (no connection, wrong keys, a
protocol mismatch, no state stream, a driver fault); **warn** means it works
but is slow, late, unwise or not real-time.  Timing figures only ever warn:
how fast a shared host answers is worth knowing but is not a broken server.
User mistakes (a malformed address, unusable key files) raise ConfigError.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from robocell.errors import ConfigError, ConnectionLost, ProtocolError, RemoteError
from robocell.hardware.keycheck import KeysFolder, load_checked
from robocell.hardware.protocol import VERSION
from robocell.hardware.sched import probe_fifo, rtprio_limit
from robocell.hardware.security import is_loopback
from robocell.hardware.stream import Received, StateStream

if TYPE_CHECKING:
    from robocell.hardware.client import Connection

DEFAULT_SAMPLES = 200  # state requests timed for the round-trip distribution
MAX_SAMPLES = 100_000
REQUEST_TIMEOUT = 2.0  # s per request
STREAM_SECONDS = 1.0  # s of state stream measured (at least 20 state periods, at most 5 s)
TELEMETRY_WAIT = 3.5  # s: telemetry comes about once a second
PROBE_TIMEOUT = 2.0  # s for the unencrypted probe that tells a keyless server from a key mismatch


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass
class Check:
    name: str
    status: Status
    summary: str
    advice: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "summary": self.summary, "advice": self.advice,
                "data": self.data}


@dataclass
class Report:
    backend: str
    checks: list[Check] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(c.status is status for c in self.checks)

    def exit_code(self, strict: bool = False) -> int:
        """1 when a check failed (or, ``strict``, warned); 0 otherwise."""
        return 1 if self.count(Status.FAIL) or (strict and self.count(Status.WARN)) else 0

    def as_dict(self, strict: bool = False) -> dict[str, Any]:
        return {"backend": self.backend, "checks": [c.as_dict() for c in self.checks],
                "exit_code": self.exit_code(strict)}


def percentiles(x: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.2f} ms"


def spread(p: dict[str, float]) -> str:
    return f"p50 {ms(p['p50'])}, p99 {ms(p['p99'])}, max {ms(p['max'])}"


# ---------------------------------------------------------------- before connecting
def check_address(backend: str) -> Check:
    """ConfigError for an address that cannot be a server's; otherwise where it points."""
    example = "give the address `robocell serve` prints, e.g. --backend tcp://127.0.0.1:5555"
    if not backend.startswith(("tcp://", "ipc://")):
        raise ConfigError(f"--backend {backend!r} is not an arm server address; {example}")
    if backend.startswith("tcp://"):
        parts = urlsplit(backend)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or parts.hostname == "*" or port is None or not 1 <= port <= 65535 \
                or parts.path not in ("", "/"):
            raise ConfigError(f"--backend {backend!r} needs a host and a port from 1 to 65535; {example}")
    where = "loopback" if is_loopback(backend) else "over the network"
    return Check("address", Status.PASS, f"{backend} ({where})", data={"loopback": is_loopback(backend)})


def check_key_files(folder: Path | None) -> tuple[Check, KeysFolder | None]:
    if folder is None:
        return Check("key files", Status.PASS, "none given: an unencrypted connection (the server must run "
                                               "without --keys)", data={"curve": False}), None
    found = load_checked(folder)  # ConfigError (exit 2) for a missing or unreadable file
    data = {"curve": True, "folder": str(folder), "client_key": found.client_id, "server_key": found.server_id}
    summary = (f"CURVE keys from {folder}: client.key_secret and server.key readable "
               f"(this client is {found.client_id[:8]}…, the server it expects {found.server_id[:8]}…)")
    if found.warnings:
        return Check("key files", Status.WARN, summary, " ".join(found.warnings), data), found
    return Check("key files", Status.PASS, summary, data=data), found


# ---------------------------------------------------------------- connecting
def check_connect(backend: str, keys: KeysFolder | None,
                  connect_timeout: float) -> tuple[Check, Check | None, Connection | None]:
    """(connectivity, protocol if it failed there, the connection if it worked)."""
    import zmq

    from robocell.hardware.client import Connection

    t0 = time.monotonic()
    try:
        conn = Connection(backend, keys=keys.keys if keys else None, timeout=REQUEST_TIMEOUT,
                          connect_timeout=connect_timeout)
    except zmq.ZMQError as exc:
        raise ConfigError(f"--backend {backend!r}: ZeroMQ cannot connect there ({exc}); give the address "
                          "`robocell serve` prints, e.g. --backend tcp://127.0.0.1:5555") from None
    except ProtocolError as exc:
        return (Check("connectivity", Status.PASS, f"a server answered at {backend}"),
                Check("protocol", Status.FAIL, str(exc),
                      "run the same robocell version on both sides (pip show robocell)"), None)
    except ConnectionLost as exc:
        return Check("connectivity", Status.FAIL, str(exc), _connect_advice(backend, keys, str(exc))), None, None
    except RemoteError as exc:
        return Check("connectivity", Status.FAIL, f"the server at {backend} refused hello: {exc}",
                     "check that the address is a `robocell serve` of this version"), None, None
    took = time.monotonic() - t0
    return Check("connectivity", Status.PASS, f"hello answered and the state stream reached this client "
                                              f"({took:.2f} s to connect)", data={"seconds": took}), None, conn


def _connect_advice(backend: str, keys: KeysFolder | None, message: str) -> str:
    if message.startswith("no state from"):
        return ("hello was answered but no state arrived: the state stream's port (the command port + 1 unless "
                "the server has --state-bind) is blocked or wrong; open it in the firewall, or check the "
                "server's ready line for its state address")
    if "nothing accepted a connection" in message:
        return (f"nothing listens at {backend}: start `robocell serve` there, or correct the address (the server's "
                "ready line 'robocell serve: arm ... on tcp://...' names its port)")
    if "handshake" not in message:
        return ("a server accepted the connection but did not answer hello: it is still starting, stalled, or not "
                "a robocell server; check its output, or raise --connect-timeout for a slow start")
    if keys is None:
        return ("the server uses CURVE: pass --keys with a folder holding its server.key and a client key pair "
                "whose public key is in the server's authorized/ folder (robocell keys generate DIR makes both)")
    if handshake_probe(backend, None) == "succeeded":
        return (f"an unencrypted connection to {backend} works: that server runs without --keys. Drop --keys, "
                "or restart the server with --keys DIR (and give clients DIR's server.key and a client key)")
    if handshake_probe(backend, keys) == "refused":
        return (f"the server read this client's handshake, so {keys.folder}/server.key is right, but refused its "
                f"key ({keys.client_id[:8]}…): copy {keys.folder}/client.key into the server's authorized/ folder "
                "and restart the server (it reads the folder when it starts)")
    return (f"the server could not read this client's handshake: {keys.folder}/server.key is most likely not this "
            "server's public key; copy the server's server.key (from the folder it was started with) again")


def handshake_probe(backend: str, keys: KeysFolder | None) -> str:
    """How the server answers a handshake: "succeeded", "refused" (ZAP denied the client key, which
    needs a server that could decrypt it) or "failed" (anything else, or nothing within PROBE_TIMEOUT)."""
    import zmq

    from robocell.hardware.connect import ConnectWatch
    from robocell.hardware.security import secure_client_socket

    ctx = zmq.Context()
    try:
        d = ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        secure_client_socket(d, keys.keys if keys else None)
        watch = ConnectWatch(d)
        d.connect(backend)
        t_end = time.monotonic() + PROBE_TIMEOUT
        try:
            while time.monotonic() < t_end:
                if watch.monitor is not None:
                    watch.monitor.poll(50)
                watch.drain()
                if watch.events[zmq.EVENT_HANDSHAKE_SUCCEEDED]:
                    return "succeeded"
                if watch.events[zmq.EVENT_HANDSHAKE_FAILED_AUTH]:
                    return "refused"
                failed = watch.events[zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL] + \
                    watch.events[zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL]
                if failed >= 3:
                    return "failed"  # repeated: not an AUTH refusal that is still on its way
            return "failed"
        finally:
            watch.close()
    finally:
        ctx.destroy(linger=0)


def check_protocol(conn: Connection) -> Check:
    info = conn.info
    arm = info.get("arm", {})
    summary = (f"{info.get('server')} server, protocol v{info.get('version')} (this client v{VERSION}); arm "
               f"'{arm.get('name')}' ({arm.get('vendor')}), control {float(info['control_rate']):g} Hz, state "
               f"{float(info['state_rate']):g} Hz, watchdog {ms(float(info['watchdog']))}")
    data = {k: info.get(k) for k in ("server", "version", "control_rate", "state_rate", "watchdog", "lease_timeout",
                                     "state_endpoint")}
    if info.get("server") != "robocell":
        return Check("protocol", Status.WARN, summary, "this is not a robocell server; its behaviour may differ "
                                                       "from docs/protocol.md", data)
    return Check("protocol", Status.PASS, summary, data=data)


def check_encryption(conn: Connection, backend: str, keys: KeysFolder | None) -> Check:
    key = str(conn.info.get("key"))
    if keys is not None:
        summary = (f"CURVE on the command socket and the state stream: the handshake succeeded, so "
                   f"{keys.folder}/server.key is this server's key and the server lists this client (as "
                   f"{key[:8]}…)")
        if key != keys.client_id:
            return Check("encryption", Status.WARN, summary, f"the server knows this client as {key!r}, not as "
                                                             f"its public key {keys.client_id!r}")
        return Check("encryption", Status.PASS, summary, data={"key": key})
    if not is_loopback(backend):
        return Check("encryption", Status.WARN, f"none: the server at {backend} accepts unencrypted clients "
                                                "from the network (it runs with --insecure)",
                     "anyone who can reach it can move the arm: restart it with --keys DIR "
                     "(robocell keys generate DIR) and give the clients --keys", {"key": key})
    return Check("encryption", Status.PASS, "none (a loopback address: only this host can connect)",
                 data={"key": key})


def check_arm(conn: Connection, reset_command: str) -> Check:
    s = conn.state()
    mode, faults = str(s["mode"]), list(s["faults"])
    lease = s.get("lease")
    summary = f"mode {mode}, {'faults: ' + '; '.join(faults) if faults else 'no faults'}, " + \
              (f"lease held by {str(lease)[:8]}…" if lease else "lease free")
    data = {"mode": mode, "faults": faults, "lease": lease}
    if mode == "fault":
        return Check("arm", Status.FAIL, summary, "the driver reports a fault: clear it on the robot (pendant, "
                                                  f"e-stop), then clear the latched stop with: {reset_command}", data)
    if mode == "stopped":
        return Check("arm", Status.WARN, summary, f"the arm is latched in a protective stop; once you know why it "
                                                  f"stopped, clear it with: {reset_command}", data)
    return Check("arm", Status.PASS, summary, data=data)


def check_round_trip(conn: Connection, samples: int) -> Check:
    times = np.empty(samples)
    try:
        for i in range(samples):
            t = time.perf_counter()
            conn.request("state")
            times[i] = time.perf_counter() - t
    except RemoteError as exc:
        return Check("round trip", Status.FAIL, f"request {i + 1} of {samples} failed: {exc}",
                     "the server stopped answering during the check: see whether it is still running")
    p = percentiles(times)
    watchdog = float(conn.info["watchdog"])
    summary = f"{samples} state requests: {spread(p)}"
    data = {"samples": samples, **p}
    if p["p99"] > watchdog / 2:
        return Check("round trip", Status.WARN, summary,
                     f"the p99 is above half the watchdog ({ms(watchdog)}): a controlling client's heartbeats take "
                     "the same path and may come too late, stopping the arm; check the network and the load on "
                     "both hosts", data)
    return Check("round trip", Status.PASS, summary, data=data)


def check_stream(conn: Connection, stream: StateStream) -> tuple[Check, list[dict[str, Any]]]:
    """The state stream's period on the server's clock and on arrival here; telemetry seen meanwhile."""
    rate = float(conn.info["state_rate"])
    nominal = 1.0 / rate
    duration = min(5.0, max(STREAM_SECONDS, 20 * nominal))
    got: list[Received] = list(stream.collect(duration, first_within=max(REQUEST_TIMEOUT, 3 * nominal)))
    telemetry = [r.telemetry for r in got if r.telemetry is not None]
    if len(got) < 3:
        return Check("state stream", Status.FAIL,
                     f"{len(got)} state message(s) from {stream.endpoint} in {duration:.1f} s (expected "
                     f"{rate:g} a second)", "the stream stopped or does not reach this host: check the server and "
                                            "the state port (command port + 1 unless --state-bind)"), telemetry
    server = percentiles(np.diff([float(r.state["t"]) for r in got]))
    here = percentiles(np.diff([r.at for r in got]))
    stale = max(0.05, 10 * nominal)  # as the Python client judges a state stale
    summary = (f"{len(got)} states in {duration:.1f} s, nominal period {ms(nominal)}; on the server's clock "
               f"{spread(server)}; arriving here {spread(here)}")
    data = {"states": len(got), "nominal": nominal, "server": server, "arrival": here}
    if here["max"] > stale:
        return Check("state stream", Status.WARN, summary,
                     f"states came more than {ms(stale)} apart: a Python client would have found its state stale "
                     "and waited; the server was late (see telemetry) or this host or the network was busy",
                     data), telemetry
    if server["p99"] > 2 * nominal:
        return Check("state stream", Status.WARN, summary, "the server publishes late: its control loop is "
                                                           "delayed (see telemetry and scheduling)", data), telemetry
    return Check("state stream", Status.PASS, summary, data=data), telemetry


def wait_telemetry(stream: StateStream, seen: list[dict[str, Any]]) -> dict[str, Any] | None:
    if seen:
        return seen[-1]
    stream.telemetry_only = True
    got = stream.recv(TELEMETRY_WAIT)
    return got.telemetry if got is not None else None


def check_telemetry(tel: dict[str, Any] | None) -> Check:
    if tel is None:
        return Check("telemetry", Status.WARN, f"no telemetry in the state stream within {TELEMETRY_WAIT:g} s",
                     "the server is a robocell older than telemetry (docs/protocol.md §5b), or its control loop "
                     "is stalled; upgrade it to see its tick timing, watchdog margin and queues")
    period, wd = float(tel["control_period"]), float(tel["watchdog"])
    q, m = tel["queues"], tel["messages"]
    ticks = {"p50": tel["tick_p50"], "p99": tel["tick_p99"], "max": tel["tick_max"]}
    summary = (f"last {tel['window']:.2f} s: {tel['ticks']} ticks, period p50 {ms(ticks['p50'])}, p99 "
               f"{ms(ticks['p99'])}, max {ms(ticks['max'])} (nominal {ms(period)}); {tel['late_ticks']} late "
               f"({tel['late_ticks_total']} since start); watchdog margin {ms(tel['watchdog_margin'])} of "
               f"{ms(wd)}; {tel['watchdog_stops']} watchdog stop(s); lease "
               f"{str(tel['lease'])[:8] + '…' if tel['lease'] else 'free'}; {tel['peers']}"
               f"{'+' if tel['peers_capped'] else ''} connection(s) sending; queues: control inbox "
               f"{q['control_inbox']}, planner {q['planner']}, results {q['results']}, command queue "
               f"{q['command_queue']}/{q['command_queue_limit']}; messages: {m['accepted']} accepted, {m['rejected']} "
               f"rejected, {m['duplicates']} duplicates; up {tel['uptime']:.0f} s")
    advice = []
    if tel["late_ticks"] or (ticks["p99"] is not None and ticks["p99"] > 1.5 * period):
        advice.append(f"the control loop ran late ({tel['late_ticks']} ticks more than two periods apart): the "
                      "server's host is busy or its control thread is not real-time (see scheduling)")
    if tel["watchdog_margin"] is not None and tel["watchdog_margin"] < 0.25 * wd:
        advice.append(f"the lease holder came within {ms(max(0.0, tel['watchdog_margin']))} of a watchdog stop: "
                      "its heartbeats are late (a busy client host or network)")
    if q["command_queue"] >= q["command_queue_limit"] or q["planner"] > 4 or q["control_inbox"] > 50:
        advice.append("requests are queueing in the server (router batch, planner or control inbox): a client "
                      "sends faster than the server handles")
    if tel["watchdog_stops"]:
        advice.append(f"{tel['watchdog_stops']} watchdog stop(s) since the server started: see its audit log")
    status = Status.WARN if advice else Status.PASS
    return Check("telemetry", status, summary, " ".join(advice), data=tel)


def check_scheduling(tel: dict[str, Any] | None, backend: str) -> Check:
    limit = rtprio_limit()
    granted, why = probe_fifo(1)
    host = "this host (also the server's)" if is_loopback(backend) else "this host (where doctor runs)"
    local = (f"{host}: RLIMIT_RTPRIO {_limit_text(limit)}, SCHED_FIFO "
             f"{'can be had' if granted else 'unknown' if granted is None else 'refused (' + why + ')'}")
    data: dict[str, Any] = {"local": {"rtprio_limit": limit, "fifo": granted, "why": why}}
    sched = tel.get("scheduling") if tel else None
    if not sched:
        return Check("scheduling", Status.WARN, f"the server's control thread: unknown (no telemetry); {local}",
                     _rt_advice(None), data)
    data["server"] = sched
    prio = f" priority {sched['priority']}" if sched.get("priority") else ""
    summary = f"the server's control thread runs {sched['policy']}{prio}; {local}"
    if sched.get("realtime"):
        return Check("scheduling", Status.PASS, summary, data=data)
    return Check("scheduling", Status.WARN, summary, _rt_advice(sched.get("rtprio_limit")), data)


def _limit_text(limit: int | None) -> str:
    return "unlimited" if limit == -1 else "unknown" if limit is None else str(limit)


def _rt_advice(server_limit: int | None) -> str:
    start = ("not real-time: a busy host delays its ticks (fine for the sim driver, not for a real arm). "
             "Start the server with real-time priority: chrt --fifo 80 robocell serve … (threads inherit it)")
    if server_limit == 0:
        return (start + "; its RLIMIT_RTPRIO is 0, so first allow it for the user that runs the server "
                        "(limits.conf: `USER - rtprio 90`, or systemd LimitRTPRIO=90) or give it CAP_SYS_NICE")
    if server_limit is None:
        return start + " (it needs RLIMIT_RTPRIO ≥ 80 or CAP_SYS_NICE)"
    return start + f" (its RLIMIT_RTPRIO is {_limit_text(server_limit)})"


# ---------------------------------------------------------------- the whole examination
def run_doctor(backend: str, keys_folder: Path | None, connect_timeout: float, samples: int = DEFAULT_SAMPLES,
               on_check: Callable[[Check], None] | None = None) -> Report:
    """Every check in order; ``on_check`` sees each as it completes (for a live report)."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise ConfigError(f"--samples {samples} is outside [1, {MAX_SAMPLES}]; 200 gives a usable p99")
    report = Report(backend)

    def add(check: Check) -> None:
        report.checks.append(check)
        if on_check is not None:
            on_check(check)

    add(check_address(backend))
    files, keys = check_key_files(keys_folder)
    add(files)
    connectivity, protocol, conn = check_connect(backend, keys, connect_timeout)
    add(connectivity)
    later = ("protocol", "encryption", "arm", "round trip", "state stream", "telemetry", "scheduling")
    if conn is None:
        if protocol is not None:
            add(protocol)
        for name in later:
            if not any(c.name == name for c in report.checks):
                add(Check(name, Status.SKIP, "not checked: no connection"))
        return report
    try:
        add(check_protocol(conn))
        add(check_encryption(conn, backend, keys))
        add(check_arm(conn, conn.reset_command()))
        add(check_round_trip(conn, samples))
        with StateStream(str(conn.info["state_endpoint"]), keys.keys if keys else None) as stream:
            stream_check, seen = check_stream(conn, stream)
            add(stream_check)
            tel = wait_telemetry(stream, seen)
        add(check_telemetry(tel))
        add(check_scheduling(tel, backend))
    except RemoteError as exc:
        # the server went away in the middle: what was checked stands, the rest is not known
        add(Check("connection", Status.FAIL, f"the server stopped answering during the checks: {exc}",
                  "see whether `robocell serve` is still running (its output says why it stopped)"))
        for name in later:
            if not any(c.name == name for c in report.checks):
                add(Check(name, Status.SKIP, "not checked: the connection was lost"))
    finally:
        conn.close()
    return report
