"""Leases and servo streams on the wire, as docs/protocol.md §4 and §6 state them (raw clients, a real server).

How a lease is released (during a trajectory: refused; during a servo stream: the stream ends and
the reply says so), which code a stale token gets, how a servo stream ends (``servo_end``, or its
setpoint deadline) and the liveness connection's own small protocol (bind message, other
connections to its port). Judged by the server's replies, state, ``stats`` and audit log.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq

from robocell.hardware.spawn import ServerProcess

from tests.hardware.rawclient import RawClient
from tests.hardware.waiting import until

SERVO_TIMEOUT = 0.2  # s: robocell serve's default setpoint deadline (the conftest server keeps it)


def _state(c: RawClient) -> dict[str, Any]:
    rep = c.call("state")
    assert rep["ok"], rep
    return rep["result"]  # type: ignore[no-any-return]


def _until(c: RawClient, cond: Any, timeout: float, what: str) -> dict[str, Any]:
    return until(lambda: _state(c), cond, timeout, what)


def _take(c: RawClient, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The lease (waiting out an earlier test's holder), with the arm idle."""
    t_end = time.monotonic() + 5.0
    while True:
        rep = c.call("lease_acquire", args)
        if rep["ok"]:
            c.lease = rep["result"]["token"]
            acquired: dict[str, Any] = rep["result"]
            break
        assert rep["code"] == "LEASE_HELD" and time.monotonic() < t_end, rep
    while _state(c)["mode"] != "idle":
        rep = c.call("reset")
        assert rep["ok"] or rep["code"] == "BUSY", rep
        assert time.monotonic() < t_end
    return acquired


def _stream(c: RawClient, n: int, step: float = 0.0005, dt: float = 0.004) -> int:
    """``n`` setpoints, each ``step`` rad further on joint 1; returns the last seq."""
    q = np.asarray(_state(c)["q_cmd"], dtype=float)
    seq = int(time.monotonic() * 1000)
    for k in range(n):
        q[0] += step
        rep = c.call("servo", {"q": q.tolist(), "dt": dt, "seq": seq + k})
        assert rep["ok"], rep
    return seq + n - 1


def _audit(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(server.audit).read_text().splitlines()]  # type: ignore[attr-defined]


def test_hello_names_every_deadline(raw: RawClient) -> None:
    r = raw.call("hello")["result"]
    assert r["watchdog"] == pytest.approx(0.5) and r["lease_timeout"] == pytest.approx(0.3)
    assert r["liveness"] == pytest.approx(0.5) and r["servo_timeout"] == pytest.approx(SERVO_TIMEOUT)


def test_releasing_the_lease_during_a_servo_stream_ends_it_cleanly(raw: RawClient, server: ServerProcess) -> None:
    _take(raw)
    n_events = len(raw.call("stats")["result"]["watchdog"])
    seq = _stream(raw, 20)
    assert _state(raw)["mode"] == "servo"
    rep = raw.call("lease_release")
    assert rep["ok"] and rep["result"] == {"servo_ended": True}, rep
    raw.lease = None
    s = _until(raw, lambda s: s["mode"] == "idle", 2.0, "the ended stream settling")
    assert s["faults"] == [] and s["lease"] is None and s["servo_seq"] == seq
    # it settled on the last setpoint, and no watchdog fired for the lease that went away
    for _ in range(int(0.6 / 0.004)):  # past the 0.5 s watchdog: nothing is armed any more
        s = _state(raw)
    assert s["mode"] == "idle" and s["faults"] == []
    assert raw.call("stats")["result"]["watchdog"][n_events:] == []
    assert any(r["op"] == "servo" and "lease was released" in r["reason"] for r in _audit(server))


def test_releasing_the_lease_during_a_trajectory_is_refused_and_changes_nothing(raw: RawClient) -> None:
    _take(raw)
    q = np.asarray(_state(raw)["q_cmd"], dtype=float)
    q[0] += 0.3
    rep = raw.call("move_joints", {"q": q.tolist(), "speed": 0.5})
    assert rep["ok"], rep
    motion = rep["result"]["motion"]
    rep = raw.call("lease_release")
    assert rep["code"] == "BUSY" and str(motion) in rep["msg"] and "nothing was released" in rep["msg"], rep
    s = _state(raw)
    assert s["lease"] is not None and s["mode"] == "moving" and s["motion"]["id"] == motion
    m = _until(raw, lambda s: s["motion"]["status"] != "running", 10.0, "the motion's end")["motion"]
    assert m["status"] == "done" and m["completed"], m
    assert raw.call("lease_release")["ok"]
    raw.lease = None


def test_a_released_token_gets_no_lease_and_a_held_lease_gets_lease_held(raw: RawClient,
                                                                         server: ServerProcess) -> None:
    _take(raw)
    old = raw.lease
    assert raw.call("lease_release")["ok"]
    q = _state(raw)["q_cmd"]
    rep = raw.call("move_joints", {"q": q})  # still sends the released token
    assert rep["code"] == "NO_LEASE" and "no longer holds" in rep["msg"] and "lease_acquire" in rep["msg"], rep
    other = RawClient(server.endpoint)
    try:
        other.acquire()
        rep = raw.call("move_joints", {"q": q})  # the same stale token, now that someone holds the lease
        # (without keys every client is "anonymous": the message says the key's newer lease holds it)
        assert rep["code"] == "LEASE_HELD" and "held by" in rep["msg"], rep
        raw.lease = None
        rep = raw.call("move_joints", {"q": q})
        assert rep["code"] == "NO_LEASE" and "token in field 'lease'" in rep["msg"], rep
        assert other.call("lease_release")["ok"]
    finally:
        other.close()
    assert old is not None


def test_servo_end_ends_the_stream_at_once(raw: RawClient) -> None:
    _take(raw)
    seq = _stream(raw, 20)
    rep = raw.call("servo_end")
    assert rep["ok"] and rep["result"] == {"ended": True, "seq": seq}, rep
    s = _until(raw, lambda s: s["mode"] == "idle", 2.0, "idle after servo_end")
    assert s["faults"] == [] and s["lease"] is not None  # the lease stays: only the stream ended
    rep = raw.call("servo_end")
    assert rep["ok"] and rep["result"]["ended"] is False, rep  # nothing to end


def test_a_stream_whose_setpoints_stop_ends_after_its_deadline_without_a_fault(raw: RawClient,
                                                                              server: ServerProcess) -> None:
    _take(raw)
    seq = _stream(raw, 20)
    n_events = len(raw.call("stats")["result"]["watchdog"])
    # no more setpoints: after the setpoint deadline the stream ends; the watchdog (0.5 s) never fires
    s = _until(raw, lambda s: s["mode"] != "servo", 2.0, "the stream's end")
    assert s["mode"] == "idle" and s["faults"] == [] and s["servo_seq"] == seq, s
    # its own audit kind: the rate limit on the server's many "servo" lines (streams started and
    # ended by servo_end or release) never hides a stream that timed out
    ended = [r for r in _audit(server) if r["op"] == "servo_timeout" and "no setpoint for" in r["reason"]]
    assert ended and f"setpoint deadline {SERVO_TIMEOUT * 1000:.0f} ms" in ended[-1]["reason"], ended
    assert raw.call("stats")["result"]["watchdog"][n_events:] == []
    # the next setpoint simply starts a new stream
    # (a servo reply comes before the tick that applies the setpoint, and a state is built per tick:
    # wait for the state that shows the new stream's last setpoint, not the one read right after)
    seq2 = _stream(raw, 5)
    s = _until(raw, lambda s: s["servo_seq"] == seq2, 2.0, "the new stream's setpoints applied")
    assert s["faults"] == [], s
    assert raw.call("servo_end")["ok"]


def _liveness_dealer(ctx: zmq.Context[zmq.Socket[bytes]], server: ServerProcess, offer: dict[str, Any]) -> Any:
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.setsockopt(zmq.HEARTBEAT_IVL, int(offer["interval"] * 1000))
    d.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
    d.setsockopt(zmq.RECONNECT_IVL, -1)
    d.connect(f"tcp://127.0.0.1:{offer['port']}")
    return d


def _bind(d: Any, token: str | None) -> dict[str, Any]:
    d.send(msgpack.packb({"v": 1, "lease": token}))
    assert d.poll(5000), "no reply on the liveness connection"
    out: dict[str, Any] = msgpack.unpackb(d.recv())
    return out


def test_the_liveness_connection_keeps_the_lease_and_only_its_own_drop_ends_it(raw: RawClient,
                                                                              server: ServerProcess) -> None:
    result = _take(raw, {"liveness": True})
    offer = result["liveness"]
    assert set(offer) == {"endpoint", "port", "interval", "deadline"} and offer["deadline"] == pytest.approx(0.5)
    ctx = zmq.Context()
    try:
        holder = _liveness_dealer(ctx, server, offer)
        stranger = _liveness_dealer(ctx, server, offer)
        assert _bind(stranger, "0" * 32)["code"] == "LEASE_HELD"  # a wrong token binds nothing
        rep = _bind(holder, raw.lease)
        assert rep["ok"] and rep["code"] == "OK", rep
        rep = _bind(stranger, raw.lease)  # the right token from another connection
        assert rep["code"] == "LEASE_HELD" and "another connection" in rep["msg"], rep
        stranger.close(linger=0)  # a stranger's connection ending does not end the lease
        # bound: application silence does not expire it (lease timeout 0.3 s), and nobody can take it
        other = RawClient(server.endpoint)
        try:
            t_end = time.monotonic() + 0.6
            while time.monotonic() < t_end:
                rep = other.call("lease_acquire")
                assert rep["code"] == "LEASE_HELD" and "liveness connection is up" in rep["msg"], rep
            assert other.call("state")["result"]["lease"] is not None
            holder.close(linger=0)  # the holder's own connection ending ends its lease (idle: no stop)
            s = _until(other, lambda s: s["lease"] is None, 5.0, "the lease's end")
            assert s["mode"] == "idle" and s["faults"] == [], s
            rep = raw.call("state")
            q = rep["result"]["q_cmd"]
            assert raw.call("move_joints", {"q": q})["code"] == "NO_LEASE"
        finally:
            other.close()
        raw.lease = None
    finally:
        ctx.destroy(linger=0)
