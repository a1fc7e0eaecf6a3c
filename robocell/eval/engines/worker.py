"""The loop a local evaluation worker runs: receive a trial job, run it, send the result.

Kept free of heavy imports at module level: the parent process imports this
module only to name :func:`serve` as the process target.
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection


def quiet_stdout() -> None:
    """Send this process's stdout (PyBullet's banner, prints in skills) to stderr.

    The parent's stdout may be a JSON report that a CI job parses.
    """
    sys.stdout.flush()
    os.dup2(2, 1)


def serve(conn: Connection) -> None:
    quiet_stdout()
    from robocell.eval.trial import execute

    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent went away: nothing left to do
            return
        if job is None:
            return
        conn.send(execute(job))
