"""``--realtime auto|require|off``: the control process's scheduling, set before its ZeroMQ context.

Threads inherit the policy of the thread that creates them, so the control process sets it on
its main thread before it creates the ZeroMQ context (whose I/O thread then inherits it) and
after the imports (numpy's and the kinematics' thread pools stay normal: the loop does not use
them). See :mod:`robocell.hardware.sched` for how to grant SCHED_FIFO.
"""

from __future__ import annotations

import os
import sys

from robocell.hardware.sched import rtprio_limit

MODES = ("auto", "require", "off")
HOW_TO_GRANT = ("grant it with `ulimit -r 99` (limits.conf: `USER - rtprio 99`; systemd: LimitRTPRIO=99), "
                "or CAP_SYS_NICE (`setcap cap_sys_nice+ep` on the interpreter), or run under `chrt`")


def set_realtime(mode: str, priority: int) -> str:
    """Take SCHED_FIFO ``priority`` for this thread (``auto``: fall back to nice -20, else normal, and
    say once on stderr what was refused; ``require``: exit 2 if refused). Returns what was granted:
    ``fifo N``, ``nice -20`` or ``normal``."""
    if mode == "off":
        return "normal"
    if not hasattr(os, "sched_setscheduler"):
        why = "this OS has no SCHED_FIFO (Linux only)"
    else:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            return f"fifo {priority}"
        except OSError as exc:
            why = (f"sched_setscheduler(SCHED_FIFO, {priority}) was refused ({exc.strerror}; RLIMIT_RTPRIO is "
                   f"{rtprio_limit()})")
    if mode == "require":
        print(f"robocell serve: --realtime require: {why}; {HOW_TO_GRANT}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    granted = "normal"
    try:
        os.nice(-20 - os.nice(0))
        granted = "nice -20"
    except OSError:
        pass
    print(f"robocell serve: the control process runs at {granted} priority: {why}; {HOW_TO_GRANT}",
          file=sys.stderr, flush=True)
    return granted
