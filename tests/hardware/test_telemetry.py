"""Telemetry in the state stream (docs/protocol.md §5b): what a real server publishes, and its parts."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq

from robocell.hardware.client import Connection
from robocell.hardware.protocol import pack
from robocell.hardware.sched import probe_fifo, scheduling
from robocell.hardware.spawn import ServerProcess
from robocell.hardware.stream import StateStream
from robocell.hardware.telemetry import MARKER, MAX_SAMPLES, PEERS_CAP, TickWindow, Traffic, tick_summary, with_field

from tests.conftest import ROOT, TABLETOP

STATE_FIELDS = {"v", "seq", "t", "wall", "tick", "q", "qd", "q_cmd", "tcp", "mode", "faults", "lease", "motion",
                "servo_seq", "gripper"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    # watchdog 0.5 s: the leased client below must not be stopped by a loaded host
    with ServerProcess(TABLETOP, "--watchdog", "0.5") as srv:
        yield srv


def next_telemetry(stream: StateStream, after: int = 0, within: float = 30.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, telemetry) of the first telemetry numbered above ``after``."""
    t_end = time.monotonic() + within
    while time.monotonic() < t_end:
        got = stream.recv(t_end - time.monotonic())
        if got is not None and got.telemetry is not None and got.telemetry["n"] > after:
            return got.state, got.telemetry
    raise AssertionError(f"no telemetry numbered above {after} within {within} s")


def flatten(d: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out.add(prefix + k)
    return out


def documented_fields() -> set[str]:
    """The field names of the telemetry table in docs/protocol.md §5b."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text.split("## 5b. Telemetry", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([\w.]+)`", line.split("|")[1]))
    return names


def test_every_subscriber_still_reads_states_and_telemetry_comes_about_once_a_second(server: ServerProcess) -> None:
    """A subscriber to everything, as every client so far: each message is a full state, some carry telemetry."""
    ctx = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 100_000)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(server.state_endpoint)
        carried: list[dict[str, Any]] = []
        states = 0
        t_end = time.monotonic() + 60.0
        while len(carried) < 3:
            assert time.monotonic() < t_end, f"{len(carried)} telemetry messages in {states} states"
            if not sub.poll(1000):
                continue
            raw = sub.recv()
            msg = msgpack.unpackb(raw)
            states += 1
            assert STATE_FIELDS <= set(msg), set(msg)  # an existing client finds every field it reads
            assert set(msg) - STATE_FIELDS <= {"telemetry"}
            assert (MARKER in raw) == ("telemetry" in msg)  # the documented cheap test before decoding
            if "telemetry" in msg:
                carried.append(msg["telemetry"])
    finally:
        ctx.destroy(linger=0)
    ns = [t["n"] for t in carried]
    assert ns == sorted(ns) and len(set(ns)) == len(ns), ns
    # about one a second, on the control loop's clock: many states between two telemetry messages
    assert states > 3 * len(carried)
    for tel in carried:
        assert flatten(tel) == documented_fields()  # the server matches the page, field for field
        assert tel["ticks"] > 0 and tel["window"] == pytest.approx(tel["window_end"] - tel["window_start"])
        assert tel["window"] > 0 and tel["control_period"] == pytest.approx(0.001)
        assert tel["tick_p50"] <= tel["tick_p99"] <= tel["tick_max"]
        assert 0 <= tel["late_ticks"] <= tel["ticks"] and tel["late_ticks"] <= tel["late_ticks_total"]
        assert tel["watchdog"] == 0.5 and tel["queues"]["command_queue_limit"] == 4096
        assert isinstance(tel["scheduling"]["policy"], str) and isinstance(tel["scheduling"]["realtime"], bool)
    assert carried[-1]["uptime"] > carried[0]["uptime"]


def test_documented_marker_bytes() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    assert f"the 10 bytes `{MARKER.hex(' ')}`" in text


def after(conn: Connection, stream: StateStream) -> dict[str, Any]:
    """The first telemetry whose window starts after everything ``conn`` did so far.

    A ``state`` request is answered after the earlier requests were handled, with the state of the
    control tick before; windows start on a tick, so a window that starts after that state's ``t``
    starts after those requests (the server's clock, not a guess about delays).
    """
    t = conn.request("state")["t"]
    n = 0
    while True:
        _, tel = next_telemetry(stream, n)
        if tel["window_start"] > t:
            return tel
        n = tel["n"]


def test_lease_margin_connections_and_counters(server: ServerProcess) -> None:
    conn = Connection(server.endpoint, timeout=5.0)
    try:
        with StateStream(server.state_endpoint) as stream:
            before = after(conn, stream)
            conn.acquire()  # heartbeats every 10 ms from now on
            for _ in range(5):
                conn.request("world")
            tel = after(conn, stream)  # a whole window with the lease held, after the 5 requests
            assert tel["lease"] == conn.info["key"] == "anonymous"
            assert tel["lease_silent"] is not None and tel["lease_silent"] >= 0
            assert tel["watchdog_margin"] is not None and tel["watchdog_margin"] <= tel["watchdog"]
            assert tel["peers"] >= 1 and tel["peers_capped"] is False  # the heartbeat socket, at least
            # since `before` was built: the lease, 5 world, the state request of after() (others only add)
            assert tel["messages"]["accepted"] >= before["messages"]["accepted"] + 7
            conn.release()
            free = after(conn, stream)
            assert free["lease"] is None and free["watchdog_margin"] is None and free["lease_silent"] is None
    finally:
        conn.close()


def test_with_field_is_packing_the_map_again() -> None:
    for n in (0, 3, 14, 15, 16, 40):
        m = {f"k{i}": [i, float(i), "x" * i] for i in range(n)}
        value = {"a": 1, "b": [1.5, None]}
        assert with_field(pack(m), n, "telemetry", pack(value)) == pack({**m, "telemetry": value})
        assert msgpack.unpackb(with_field(pack(m), n, "telemetry", pack(value))) == {**m, "telemetry": value}


def test_tick_window_summary() -> None:
    w = TickWindow(t0=10.0)
    intervals = [0.001] * 98 + [0.0025, 0.004]
    margins = [0.04, None, 0.01, 0.03] * 25
    for i, (iv, m) in enumerate(zip(intervals, margins, strict=True)):
        w.add(iv, iv > 0.002, m, inbox=i % 7)
    w.t1 = 11.0
    s = tick_summary(w)
    assert s["window"] == 1.0 and s["ticks"] == 100 and s["late_ticks"] == 2
    assert s["tick_p50"] == 0.001 and s["tick_max"] == 0.004 and 0.0025 <= s["tick_p99"] <= 0.004
    assert s["watchdog_margin"] == 0.01 and w.inbox_max == 6
    empty = tick_summary(TickWindow(t0=0.0))
    assert empty["tick_p50"] is None and empty["tick_max"] is None and empty["watchdog_margin"] is None


def test_tick_window_is_bounded_and_keeps_the_longest_exact() -> None:
    w = TickWindow(t0=0.0)
    for _ in range(MAX_SAMPLES):
        w.add(0.001, False, None, 0)
    w.add(0.5, True, None, 0)  # beyond the samples kept
    assert len(w.intervals) == MAX_SAMPLES and w.ticks == MAX_SAMPLES + 1
    assert tick_summary(w)["tick_max"] == 0.5 and w.late == 1


def test_traffic_counts_connections_up_to_the_cap() -> None:
    tr = Traffic()
    tr.heard(b"a", 0)
    tr.heard(b"a", 1)
    tr.heard(b"b", 2)
    tr.heard(b"c", 0)
    assert tr.take() == (3, False, 2)
    assert tr.take() == (0, False, 0)  # a new window
    for k in range(0, PEERS_CAP + 100, 50):
        for i in range(k, k + 50):
            tr.heard(i.to_bytes(4, "big"), i - k)
    peers, capped, batch = tr.take()
    assert peers == PEERS_CAP and capped and batch == 49


def test_scheduling_reads_a_real_time_thread() -> None:
    granted, why = probe_fifo(1)
    if not granted:
        pytest.skip(f"this host does not grant SCHED_FIFO ({why})")
    import os

    ready, done = threading.Event(), threading.Event()
    tid: list[int] = []

    def waiter() -> None:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(3))
        tid.append(threading.get_native_id())
        ready.set()
        done.wait(30.0)  # asleep: a real-time thread that waits costs the host nothing

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    try:
        assert ready.wait(30.0)
        s = scheduling(tid[0])
        assert s["policy"] == "SCHED_FIFO" and s["priority"] == 3 and s["realtime"] is True
        me = scheduling(threading.get_native_id())
        assert me["policy"] == "SCHED_OTHER" and me["realtime"] is False
    finally:
        done.set()
        t.join(timeout=30.0)
