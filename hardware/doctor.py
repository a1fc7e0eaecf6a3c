"""``robocell doctor``'s checks of a served arm, each ending in pass, warn or fail with plain advice.

In order: the address, the key files, connectivity (how far it got, in the
words of :mod:`robocell.hardware.connect`), the protocol version, encryption,
the arm's mode, the round-trip latency of ``state`` requests, the state
stream's period and jitter, the server's telemetry (docs/protocol.md §5b) and
real-time scheduling (this host's, and the server's control thread's).
This module runs them, and holds the checks before and of the connection; the timing
checks are :mod:`robocell.hardware.doctortiming`, the verdict types
:mod:`robocell.hardware.doctorreport`.

Verdicts: **fail** means something does not work (no connection, wrong keys, a
protocol mismatch, no state stream, a driver fault); **warn** means it works
but is slow, late, unwise or not real-time.  Timing figures only ever warn:
how fast a shared host answers is worth knowing but is not a broken server.
User mistakes (a malformed address, unusable key files) raise ConfigError.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from robocell.errors import ConfigError, ConnectionLost, ProtocolError, RemoteError
from robocell.hardware.doctorreport import (  # noqa: F401 - percentiles, spread: importable here as before
    REQUEST_TIMEOUT, Check, Report, Status, ms, percentiles, spread,
)
from robocell.hardware.doctortiming import (  # noqa: F401 - STREAM_SECONDS, TELEMETRY_WAIT: as before
    STREAM_SECONDS, TELEMETRY_WAIT, check_round_trip, check_scheduling, check_stream, check_telemetry, wait_telemetry,
)
from robocell.hardware.keycheck import KeysFolder, load_checked
from robocell.hardware.protocol import VERSION
from robocell.hardware.security import is_loopback
from robocell.hardware.stream import StateStream

if TYPE_CHECKING:
    from robocell.hardware.client import Connection

DEFAULT_SAMPLES = 200  # state requests timed for the round-trip distribution
MAX_SAMPLES = 100_000
PROBE_TIMEOUT = 2.0  # s for the unencrypted probe that tells a keyless server from a key mismatch


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
