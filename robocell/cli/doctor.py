"""``robocell doctor``: check a served arm, one pass/warn/fail line per check, with advice.

Exit code 0 when nothing failed (warnings included, unless ``--strict``), 1
when a check failed, 2 for a user mistake (a malformed address, unusable key
files), as everywhere in the CLI.  The checks themselves live in
:mod:`robocell.hardware.doctor`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from robocell.cli.options import ConnectTimeoutOpt, ServerKeysOpt, ServerOpt, console
from robocell.errors import ConfigError

if TYPE_CHECKING:
    from robocell.hardware.doctor import Check

DOCTOR_CONNECT_TIMEOUT = 10.0  # s: a doctor should answer soon; a server still starting gets this long
STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def print_check(console: Console, check: Check) -> None:
    status = check.status.value
    console.print(f"[{STYLE[status]}]{status.upper():<5}[/] {check.name:<13} {escape(check.summary)}")
    if check.advice:
        console.print(f"{'':<19}[{STYLE[status]}]advice:[/] {escape(check.advice)}")


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        backend: ServerOpt,
        keys: ServerKeysOpt = None,
        connect_timeout: ConnectTimeoutOpt = DOCTOR_CONNECT_TIMEOUT,
        samples: Annotated[int, typer.Option(help="State requests timed for the round-trip figures.")] = 200,
        as_json: Annotated[bool, typer.Option("--json", help="Print the checks as one JSON object.")] = False,
        strict: Annotated[bool, typer.Option(help="Exit with code 1 on warnings too.")] = False,
    ) -> None:
        """Check a served arm: connection, keys, protocol, latency, state stream, telemetry, real-time scheduling."""
        from robocell.hardware.doctor import Status, run_doctor

        if not 0.01 <= connect_timeout <= 3600:
            raise ConfigError(f"--connect-timeout {connect_timeout:g} s is outside [0.01, 3600] s; it is how long "
                              "doctor waits for a server that is still starting")
        if not as_json:
            console.print(f"robocell doctor: {escape(backend)}")
        report = run_doctor(backend, keys, connect_timeout, samples,
                            on_check=None if as_json else lambda c: print_check(console, c))
        code = report.exit_code(strict)
        if as_json:
            sys.stdout.write(json.dumps(report.as_dict(strict)) + "\n")
        else:
            counts = ", ".join(f"{report.count(s)} {word}" for s, word in (
                (Status.PASS, "passed"), (Status.WARN, "warned"), (Status.FAIL, "failed"), (Status.SKIP, "skipped")))
            verdict = "[red]problems found[/]" if code else "[green]no failures[/]"
            console.print(f"doctor: {counts}; {verdict} (exit {code})")
        if code:
            raise typer.Exit(code)
