"""``robocell doctor``'s timing checks of a live server: round trips, the state stream, telemetry, scheduling.

Timing figures only ever warn: how fast a shared host answers is worth knowing but is
not a broken server.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from robocell.errors import RemoteError
from robocell.hardware.doctorreport import REQUEST_TIMEOUT, Check, Status, ms, percentiles, spread
from robocell.hardware.sched import probe_fifo, rtprio_limit
from robocell.hardware.security import is_loopback
from robocell.hardware.stream import Received, StateStream

if TYPE_CHECKING:
    from robocell.hardware.client import Connection

STREAM_SECONDS = 1.0  # s of state stream measured (at least 20 state periods, at most 5 s)
TELEMETRY_WAIT = 3.5  # s: telemetry comes about once a second


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
