"""``robocell top``: a live view of a served arm's telemetry (docs/protocol.md §5b).

One frame per telemetry message (about one a second): the control loop's tick
period and late ticks, the watchdog margin, the lease, connections, queue
depths, message counts and rates, the arm's mode and faults.  On a terminal
the frame is redrawn in place (rich.live); otherwise, and with ``--once``,
frames are printed one after another, so ``robocell top > log`` keeps a
record.  A server that stops publishing is shown as silent, with how long,
and watched until it comes back; Ctrl-C quits with exit code 0.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group
from rich.markup import escape

from robocell.cli.options import ConnectTimeoutOpt, ServerKeysOpt, ServerOpt, console
from robocell.hardware.connect import DEFAULT_CONNECT_TIMEOUT

if TYPE_CHECKING:
    from rich.text import Text

    from robocell.hardware.stream import Received

ONCE_WAIT = 5.0  # s --once waits for a telemetry message (they come about once a second)
SILENT_AFTER = 2.5  # telemetry periods without a message before the server counts as silent


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.2f} ms"


def _rate(now: dict[str, Any], before: dict[str, Any] | None, key: str) -> str:
    if before is None or before["uptime"] >= now["uptime"]:
        return ""
    dt = now["uptime"] - before["uptime"]
    return f" ({(now['messages'][key] - before['messages'][key]) / dt:+.0f}/s)"


def frame(backend: str, info: dict[str, Any], got: Received | None, before: dict[str, Any] | None,
          silent_for: float | None) -> Group:
    """One screen: the newest telemetry (``got``), rates against ``before``, and a line on silence."""
    from rich.table import Table
    from rich.text import Text

    arm = info.get("arm", {})
    title = f"robocell top: {backend}, arm '{arm.get('name')}' ({arm.get('vendor')})"
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    if got is None or got.telemetry is None:
        table.add_row("telemetry", "none received yet")
        return Group(Text(title), table, _status(backend, silent_for))
    tel, st = got.telemetry, got.state
    q, m, sched = tel["queues"], tel["messages"], tel["scheduling"]
    faults = "; ".join(st.get("faults") or []) or "none"
    rows = [
        ("mode", str(st.get("mode"))),
        ("faults", faults),
        ("uptime", f"{tel['uptime']:.0f} s (telemetry #{tel['n']}, window {tel['window']:.2f} s)"),
        ("tick period", f"p50 {_ms(tel['tick_p50'])}  p99 {_ms(tel['tick_p99'])}  max {_ms(tel['tick_max'])}  "
                        f"(nominal {_ms(tel['control_period'])}, {tel['ticks']} ticks)"),
        ("late ticks", f"{tel['late_ticks']} in the window, {tel['late_ticks_total']} since start"),
        ("watchdog margin", f"{_ms(tel['watchdog_margin'])} of {_ms(tel['watchdog'])}"
                            f"{'' if tel['watchdog_margin'] is not None else ' (nobody holds the lease)'}; "
                            f"{tel['watchdog_stops']} stop(s) since start"),
        ("lease", f"{tel['lease']} (silent {_ms(tel['lease_silent'])})" if tel["lease"] else "free"),
        ("connections", f"{tel['peers']}{'+' if tel['peers_capped'] else ''} sending requests in the window"),
        ("queues", f"control inbox {q['control_inbox']}, planner {q['planner']}, results {q['results']}, "
                   f"command queue {q['command_queue']}/{q['command_queue_limit']}"),
        ("messages", f"accepted {m['accepted']}{_rate(tel, before, 'accepted')}, rejected {m['rejected']}"
                     f"{_rate(tel, before, 'rejected')}, duplicates {m['duplicates']}"),
        ("scheduling", f"{sched['policy']}"
                       f"{' priority ' + str(sched['priority']) if sched.get('priority') else ''}"
                       f"{'' if sched.get('realtime') else ' (not real-time)'}"),
    ]
    for name, value in rows:
        table.add_row(name, escape(value))
    return Group(Text(title), table, _status(backend, silent_for))


def _status(backend: str, silent_for: float | None) -> Text:
    from rich.text import Text

    if silent_for is None:
        return Text("live", style="green")
    return Text(f"no telemetry from {backend} for {silent_for:.1f} s: the server stopped or cannot be reached; "
                "waiting for it to come back (Ctrl-C to quit)", style="red")


def watch(backend: str, keys_folder: Path | None, connect_timeout: float, once: bool, console: Console) -> int:
    from robocell.hardware.client import Connection
    from robocell.hardware.doctor import check_address
    from robocell.hardware.keycheck import load_checked
    from robocell.hardware.stream import StateStream

    check_address(backend)  # ConfigError (exit 2) for an address that cannot be a server's
    keys = load_checked(keys_folder).keys if keys_folder is not None else None
    conn = Connection(backend, keys=keys, connect_timeout=connect_timeout)  # ConnectionLost says why (exit 2)
    info = conn.info
    conn.close()  # top only watches: the stream needs no command socket (and never the lease)
    with StateStream(str(info["state_endpoint"]), keys, telemetry_only=True) as stream:
        if once:
            got = stream.recv(ONCE_WAIT)
            if got is None:
                console.print(f"[red]no telemetry from {escape(backend)} within {ONCE_WAIT:g} s[/]: the server is a "
                              "robocell older than telemetry, or its control loop is stalled")
                return 1
            console.print(frame(backend, info, got, None, None))
            return 0
        try:
            _live(backend, info, stream, console)
        except KeyboardInterrupt:
            console.print("top: stopped (Ctrl-C)")
        return 0


def _live(backend: str, info: dict[str, Any], stream: Any, console: Console) -> None:
    from rich.live import Live

    started = time.monotonic()
    last: Received | None = None
    before: dict[str, Any] | None = None

    def silence() -> float | None:
        period = float(last.telemetry["window"]) if last is not None and last.telemetry else 1.0
        since = time.monotonic() - (last.at if last is not None else started)
        return since if since > SILENT_AFTER * max(period, 0.05) else None

    if not console.is_terminal:
        # a file or a pipe: one frame after another (like `top -b`), nothing redrawn
        while True:
            got = stream.recv(1.0)
            if got is not None:
                before, last = (last.telemetry if last is not None else None), got
            silent = silence()
            if got is not None or silent is not None:  # new telemetry, or still silent
                console.print(frame(backend, info, last, before, silent))
                console.print()
    with Live(frame(backend, info, last, before, silence()), console=console, auto_refresh=False) as live:
        while True:
            got = stream.recv(1.0)  # a frame per telemetry, or a second of silence counted
            if got is not None:
                before, last = (last.telemetry if last is not None else None), got
            live.update(frame(backend, info, last, before, silence()), refresh=True)


def register(app: typer.Typer) -> None:
    @app.command("top")
    def top_cmd(
        backend: ServerOpt,
        keys: ServerKeysOpt = None,
        connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT,
        once: Annotated[bool, typer.Option(help="Print one frame and exit (for scripts).")] = False,
    ) -> None:
        """Watch a served arm's telemetry live: tick timing, watchdog margin, lease, queues, mode, faults."""
        try:
            code = watch(backend, keys, connect_timeout, once, console)
        except KeyboardInterrupt:  # while it still connects: quitting is what was asked, not an error
            console.print("top: stopped (Ctrl-C)")
            code = 0
        if code:
            raise typer.Exit(code)
