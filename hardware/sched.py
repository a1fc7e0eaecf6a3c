"""Real-time scheduling facts: a thread's policy, the RLIMIT_RTPRIO, whether SCHED_FIFO can be had.

A control loop at 1 kHz under the default policy (SCHED_OTHER) shares the CPU
fairly with everything else on the host, so a busy machine makes it late; a
thread in SCHED_FIFO preempts every normal thread.  Linux grants SCHED_FIFO to
a process whose RLIMIT_RTPRIO allows the priority (``ulimit -r``, limits.conf
``rtprio``, systemd ``LimitRTPRIO=``) or that has CAP_SYS_NICE; threads inherit
the policy of the thread that creates them, so ``chrt --fifo N robocell serve``
runs the server's control thread real-time.  Everything here is Linux-only and
reports "unknown" elsewhere.
"""

from __future__ import annotations

import os
import threading
from typing import Any

POLICY_NAMES: dict[int, str] = {
    getattr(os, name): name for name in ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_IDLE")
    if hasattr(os, name)
}
REALTIME_POLICIES = frozenset({"SCHED_FIFO", "SCHED_RR"})


def rtprio_limit() -> int | None:
    """This process's soft RLIMIT_RTPRIO (the highest SCHED_FIFO priority it may take without
    CAP_SYS_NICE; -1 for unlimited), or None where the limit does not exist (not Linux)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    if not hasattr(resource, "RLIMIT_RTPRIO"):  # macOS, BSD
        return None
    soft = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    return -1 if soft == resource.RLIM_INFINITY else int(soft)


def scheduling(native_id: int | None) -> dict[str, Any]:
    """``policy`` (name), ``priority`` and ``realtime`` of a thread (by its native id), and this
    process's ``rtprio_limit``."""
    out: dict[str, Any] = {"policy": "unknown", "priority": None, "realtime": False, "rtprio_limit": rtprio_limit()}
    if native_id is None or not hasattr(os, "sched_getscheduler"):
        return out
    try:
        policy = os.sched_getscheduler(native_id)
        priority = int(os.sched_getparam(native_id).sched_priority)
    except OSError:
        return out  # the thread has just ended (the server is closing): its policy is unknown
    out["policy"] = POLICY_NAMES.get(policy, str(policy))
    out["priority"] = priority
    out["realtime"] = out["policy"] in REALTIME_POLICIES
    return out


def probe_fifo(priority: int = 1) -> tuple[bool | None, str]:
    """Whether this process may put a thread in SCHED_FIFO at ``priority``: tried on a throw-away
    thread that then goes back to SCHED_OTHER. (None, why) where the question has no answer."""
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_FIFO"):
        return None, "this OS has no SCHED_FIFO (Linux only)"
    outcome: list[tuple[bool, str]] = []

    def attempt() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: this thread
        except OSError as exc:
            outcome.append((False, exc.strerror or str(exc)))
            return
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        outcome.append((True, "granted"))

    t = threading.Thread(target=attempt, name="robocell-fifo-probe", daemon=True)
    t.start()
    t.join(timeout=5.0)
    if not outcome:
        return None, "the probe thread did not finish within 5 s"
    return outcome[0]
