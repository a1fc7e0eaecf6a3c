"""Start `robocell serve` in another process for tests: loopback, random ports, hard timeouts."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

READY = re.compile(r"on (tcp://\S+) state (tcp://\S+)")
START_TIMEOUT = 60.0  # s: imports and URDF parsing on a loaded 2-core machine


class ServerProcess:
    """``with ServerProcess(cell) as srv: srv.endpoint``; killed (SIGKILL) on exit."""

    def __init__(self, cell: Path | str, *args: str, bind: str = "tcp://127.0.0.1:0",
                 state_bind: str | None = None) -> None:
        self.cell = str(cell)
        self.args = list(args)
        self.bind = bind
        self.state_bind = state_bind
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.state_endpoint = ""
        self.output: list[str] = []

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "robocell", "serve", "--cell", self.cell, "--bind", self.bind, *self.args]
        if self.state_bind:
            cmd += ["--state-bind", self.state_bind]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.proc.stdout is not None
        t_end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < t_end:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, t_end - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            m = READY.search(line)
            if m:
                self.endpoint, self.state_endpoint = m.group(1), m.group(2)
                return self
        self.kill()
        raise RuntimeError("robocell serve did not start:\n" + "".join(self.output))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
