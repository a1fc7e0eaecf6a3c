"""Fuzzing: at least 100,000 malformed messages; the server stays up, answers every one, moves nothing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robocell.hardware.protocol import MAX_ARRAY, MAX_MAP, MAX_MESSAGE, MAX_STR, WireError, parse_request, unpack

from tests.hardware.rawclient import RawClient
from robocell.hardware.spawn import ServerProcess

N_MESSAGES = 100_000
WINDOW = 500  # messages in flight before their replies are read


def _valid(raw: RawClient, rng: np.random.Generator, q: list[float]) -> dict[str, Any]:
    op = rng.choice(["move_joints", "servo", "move_pose", "follow", "gripper", "reset", "state", "stop"])
    args: dict[str, Any] = {
        "move_joints": {"q": q}, "servo": {"q": q, "dt": 0.004}, "reset": {}, "state": {}, "stop": {},
        "move_pose": {"pose": np.eye(4).reshape(-1).tolist()}, "follow": {"t": [0.0, 1.0], "q": [q, q]},
        "gripper": {"action": "close"},
    }[str(op)]
    return raw.msg(str(op), args)


def _junk(rng: np.random.Generator) -> Any:
    return [None, "x" * int(rng.integers(0, 40)), -1, 2**64 - 1 if rng.random() < 0.5 else 1.5, [1, "a"], {"k": 1},
            True, b"\x00\xff", float("nan"), float("inf")][int(rng.integers(0, 10))]


def _malformed(raw: RawClient, rng: np.random.Generator, q: list[float]) -> Iterator[list[bytes]]:
    """Yield multipart messages, each malformed by construction or checked so by the parser."""
    n = len(q)
    while True:
        base = _valid(raw, rng, q)
        kind = int(rng.integers(0, 12))
        m = dict(base)
        if kind == 0:
            yield [rng.bytes(int(rng.integers(0, 300)))]
            continue
        if kind == 1:
            data = msgpack.packb(base)
            yield [data[: int(rng.integers(0, len(data)))]]
            continue
        if kind == 2:
            yield [msgpack.packb(_junk(rng) if rng.random() < 0.8 else [base])]
            continue
        if kind == 3:
            m["v"] = [0, 2, "1", True, None, 1.0, -1, 2**63][int(rng.integers(0, 8))]
        elif kind == 4:
            del m[["v", "op", "id", "deadline"][int(rng.integers(0, 4))]]
        elif kind == 5:
            field = ["op", "id", "deadline", "lease", "args"][int(rng.integers(0, 5))]
            choices = {"op": [1, None, "launch", "", "x" * 100], "id": ["7", -3, 1.5, True, 0, -2**63],
                       "deadline": ["1", -1.0, 0.0, float("nan"), float("inf"), 1e9], "lease": [5, ["t"], True],
                       "args": [[1], "q", 3]}[field]
            m[field] = choices[int(rng.integers(0, len(choices)))]
        elif kind == 6:
            m["extra_" + str(int(rng.integers(0, 99)))] = _junk(rng)
        elif kind == 7 and base["op"] in ("move_joints", "servo"):
            bad = list(q)
            how = int(rng.integers(0, 7))
            if how == 0:
                bad = bad[: int(rng.integers(0, n))]
            elif how == 1:
                bad = bad + [0.0] * int(rng.integers(1, 4))
            elif how == 2:
                junk = _junk(rng)
                if isinstance(junk, (int, float)) and not isinstance(junk, bool) and math.isfinite(junk) \
                        and abs(junk) < 10:
                    junk = "1.0"  # a plain number in range would make a valid setpoint
                bad[int(rng.integers(0, n))] = junk
            elif how == 3:
                bad[int(rng.integers(0, n))] = float(["nan", "inf", "-inf"][int(rng.integers(0, 3))])
            elif how == 4:
                bad[int(rng.integers(0, n))] = 50.0 * (1 if rng.random() < 0.5 else -1)  # way past any limit
            elif how == 5:
                m["args"] = {**m["args"], "nonsense": 1}
            else:
                bad = [bad]
            if how != 5:
                m["args"] = {**m["args"], "q": bad}
        elif kind == 8:
            m["args"] = {"q": msgpack.ExtType(int(rng.integers(0, 127)), rng.bytes(8))}
        elif kind == 9:
            what = int(rng.integers(0, 3))
            if what == 0:
                # an array header claiming more than MAX_ARRAY elements (the bytes need not follow:
                # the decoder must refuse on the header alone)
                m["args"] = {"q": []}
                data = msgpack.packb(m, use_bin_type=True)
                i = data.rindex(b"\x90")
                yield [data[:i] + b"\xdd" + (MAX_ARRAY + 1).to_bytes(4, "big") + b"\x00" * 16]
                continue
            elif what == 1:
                m["lease"] = "L" * (MAX_STR + 1)
            else:
                m["args"] = {f"k{i}": i for i in range(MAX_MAP + 1)}
        elif kind == 10:
            yield [msgpack.packb(base), rng.bytes(int(rng.integers(0, 20)))]  # an extra frame
            continue
        else:
            data = bytearray(msgpack.packb(base))
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
            if _parses(bytes(data)):
                continue  # the flips happened to make a well-formed command: not a malformed message
            yield [bytes(data)]
            continue
        if kind == 7 and base["op"] not in ("move_joints", "servo"):
            continue
        yield [msgpack.packb(m, use_bin_type=True)]


def _parses(data: bytes) -> bool:
    try:
        parse_request(unpack(data))
        return True
    except WireError:
        return False


def test_100k_malformed_messages_change_nothing(server: ServerProcess) -> None:
    raw = RawClient(server.endpoint, timeout=20.0)
    try:
        raw.acquire()  # with the real lease: a rejection is due to the malformation alone
        before = raw.call("state")["result"]
        stats0 = raw.call("stats")["result"]["messages"]
        rng = np.random.default_rng(20261124)
        gen = _malformed(raw, rng, before["q_cmd"])
        sent = 0
        ok_replies = 0
        codes: dict[str, int] = {}
        while sent < N_MESSAGES:
            batch = [next(gen) for _ in range(min(WINDOW, N_MESSAGES - sent))]
            for frames in batch:
                raw.send_raw(*frames)
            for _ in batch:
                rep = raw.recv()
                ok_replies += bool(rep.get("ok"))
                codes[rep["code"]] = codes.get(rep["code"], 0) + 1
            sent += len(batch)
        # a few whole frames above the size limit
        for _ in range(3):
            raw.send_raw(b"\x80" + b"\x00" * (MAX_MESSAGE + 10))
            rep = raw.recv()
            assert rep["code"] == "TOO_LARGE"
        assert ok_replies == 0, codes
        assert {"BAD_MESSAGE", "BAD_VERSION", "BAD_FIELD", "SAFETY", "TOO_LARGE", "UNKNOWN_OP"} <= set(codes), codes
        after = raw.call("state")["result"]  # still up, still answering
        assert after["mode"] == before["mode"] == "idle"
        assert after["motion"] == before["motion"]
        np.testing.assert_array_equal(after["q_cmd"], before["q_cmd"])  # not even a micro-radian
        assert max(abs(a - b) for a, b in zip(after["q"], before["q"])) < 1e-3
        stats = raw.call("stats")["result"]["messages"]
        assert stats.get("accepted", 0) - stats0.get("accepted", 0) <= 3  # our own state/stats probes
        assert stats["rejected"] - stats0.get("rejected", 0) >= N_MESSAGES, (stats, codes)
    finally:
        raw.close()


# ---------------------------------------------------------------- in-process, property-based
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=8), children, max_size=8),
    max_leaves=10,
)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(st.binary(max_size=400))
def test_any_bytes_decode_to_a_request_or_a_wire_error(data: bytes) -> None:
    try:
        parse_request(unpack(data))
    except WireError as exc:
        assert exc.message and exc.code.value != "OK"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(["v", "op", "id", "deadline", "lease", "args", "x"]), _values, max_size=7))
def test_any_map_is_a_request_or_a_wire_error(msg: dict[str, Any]) -> None:
    data = msgpack.packb(msg, use_bin_type=True)
    try:
        req = parse_request(unpack(data))
    except WireError as exc:
        assert exc.message
        return
    # whatever got through is exactly the typed envelope
    assert type(msg["v"]) is int and msg["v"] == 1 and isinstance(req.op, str) and req.id >= 0
    assert math.isfinite(req.deadline) and req.deadline > 0 and isinstance(req.args, dict)
