"""Start ``robocell serve`` in another process and wait until it listens.

Used by the tests, the benchmarks and ``examples/remote_pick_place.py``: the
server prints one ready line (:func:`ready_line`) once both sockets are bound;
the parent reads it, with a hard timeout, to learn the endpoints (random ports
when bound to port 0).  Waiting on that line is synchronisation by event, not
by sleeping.
"""

from __future__ import annotations

import os
import re
import shlex
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

READY = re.compile(r"on (tcp://\S+) state (tcp://\S+)")
START_TIMEOUT = 60.0  # s: imports and URDF parsing on a loaded 2-core machine


def ready_line(arm: str, driver: str, endpoint: str, state_endpoint: str, secure: bool) -> str:
    """The line ``robocell serve`` prints once it listens (parsed by :data:`READY`)."""
    return (f"robocell serve: arm '{arm}' ({driver} driver) on {endpoint} "
            f"state {state_endpoint} {'CURVE' if secure else 'no encryption'}")


def wait_ready(proc: subprocess.Popen[str], timeout: float = START_TIMEOUT,
               output: list[str] | None = None) -> tuple[str, str]:
    """(command endpoint, state endpoint) from a process's ready line; kills it on timeout or exit."""
    assert proc.stdout is not None
    lines = [] if output is None else output
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, t_end - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = READY.search(line)
        if m:
            return m.group(1), m.group(2)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    raise RuntimeError("the server did not start:\n" + "".join(lines))


class ServerProcess:
    """``with ServerProcess(cell) as srv: srv.endpoint``; killed (SIGKILL) on exit.

    ``args`` are extra ``robocell serve`` options (``"--keys", DIR``, ...).
    """

    def __init__(self, cell: Path | str, *args: str, bind: str = "tcp://127.0.0.1:0",
                 state_bind: str | None = None, cwd: Path | str | None = None) -> None:
        self.cell = str(cell)
        self.args = list(args)
        self.bind = bind
        self.state_bind = state_bind
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.state_endpoint = ""
        self.output: list[str] = []

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        # ROBOCELL_SERVE_ARGS: options added to every server started here unless given (the tests run
        # tests/hardware in both control modes with ROBOCELL_SERVE_ARGS="--control process")
        extra = shlex.split(os.environ.get("ROBOCELL_SERVE_ARGS", "")) if "--control" not in self.args else []
        cmd = [sys.executable, "-m", "robocell", "serve", "--cell", self.cell, "--bind", self.bind, *self.args, *extra]
        if self.state_bind:
            cmd += ["--state-bind", self.state_bind]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=self.cwd)
        self.endpoint, self.state_endpoint = wait_ready(self.proc, timeout, self.output)
        return self

    def stop(self) -> None:
        """A clean stop (SIGINT: the driver holds the arm, the audit log is closed); SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
