"""``robocell reset``: clear a served arm's latched protective stop (watchdog, stop request).

The protocol's ``reset`` (docs/protocol.md §4, §6) needs the control lease, so
this takes it (waiting out the lease of a client that died: that is how a
watchdog stop usually comes about), sends ``reset`` once the stop's
deceleration is over, and releases the lease.  An arm that is not stopped is
left alone, and a live client holding the lease is never pushed aside.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from robocell.cli.options import ConnectTimeoutOpt, ServerKeysOpt, ServerOpt, console
from robocell.errors import ConfigError, LeaseError, MotionError
from robocell.hardware.connect import DEFAULT_CONNECT_TIMEOUT

DECELERATION_WAIT = 5.0  # s: a stop decelerates within ~1 s at the arm's acceleration limits


def reset_arm(backend: str, keys: Path | None, connect_timeout: float, console: Console) -> None:
    """Reset the arm served at ``backend``; raises a RobocellError saying why it could not."""
    from robocell.hardware.client import Connection
    from robocell.hardware.security import load_client_keys

    if not backend.startswith(("tcp://", "ipc://")):
        raise ConfigError(f"--backend {backend!r} is not an arm server address; give the address "
                          "`robocell serve` prints, e.g. --backend tcp://127.0.0.1:5555")
    conn = Connection(backend, keys=load_client_keys(keys) if keys else None, connect_timeout=connect_timeout)
    try:
        before = conn.state()
        if before["mode"] not in ("stopped", "fault"):
            console.print(f"the arm at {backend} is not stopped (mode '{before['mode']}'); nothing to reset")
            return
        _take_lease(conn, float(conn.info.get("lease_timeout", 1.0)))
        _send_reset(conn)
        after = conn.state()
        cleared = "; ".join(before["faults"]) or "a latched stop"
        console.print(f"[green]reset[/]: the arm at {backend} is '{after['mode']}' again (cleared: {cleared})")
    finally:
        conn.close()  # releases the lease


def _take_lease(conn: Any, lease_timeout: float) -> None:
    """The lease, once a silent holder's has expired; a live holder keeps it."""
    t_end = time.monotonic() + lease_timeout + 1.0
    while True:
        try:
            conn.acquire()
            return
        except LeaseError as exc:
            if time.monotonic() > t_end:
                raise LeaseError(f"{exc}. Another client is controlling the arm at {conn.address} and still "
                                 "alive; stop that program (it may reset the arm itself), then run this "
                                 "again") from None
            conn.next_state()  # paces the retry at the state stream's rate


def _send_reset(conn: Any) -> None:
    """``reset``, retried while the stop still decelerates (BUSY); a driver fault is raised as is."""
    t_end = time.monotonic() + DECELERATION_WAIT
    while True:
        try:
            conn.request("reset")
            return
        except MotionError as exc:
            if "[server code BUSY]" not in str(exc) or time.monotonic() > t_end:
                raise
            conn.next_state()


def register(app: typer.Typer) -> None:
    @app.command("reset")
    def reset_cmd(
        backend: ServerOpt,
        keys: ServerKeysOpt = None,
        connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        """Clear a latched protective stop (watchdog, stop) on a served arm, once you know why it stopped."""
        reset_arm(backend, keys, connect_timeout, console)
