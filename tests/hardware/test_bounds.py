"""The bounds themselves, in process: the reply cache, the rate limiter, the fault list, the
decoder's nesting and type checks, and docs/protocol.md §11 against robocell.hardware.bounds."""

from __future__ import annotations

import re

import msgpack
import pytest

from robocell.hardware import bounds as b
from robocell.hardware.faults import OVERFLOW, LatchedFaults
from robocell.hardware.protocol import Code, WireError, describe, unpack
from robocell.hardware.ratelimit import RateLimiter, cost
from robocell.hardware.replycache import ReplyCache

from tests.conftest import ROOT


# ---------------------------------------------------------------- reply cache
def test_a_client_loses_replies_only_to_its_own_traffic() -> None:
    cache = ReplyCache(per_client=4, client_bytes=10_000, age=100.0, clients=3)
    cache.put("a", 1, b"move", now=0.0)
    for i in range(10_000):
        cache.put("b", i + 10, b"x", now=1.0)  # another client's flood fills b's cache only
    assert cache.get("a", 1, now=2.0) == b"move"
    for i in range(4):
        cache.put("a", 100 + i, b"y", now=3.0)
    assert cache.get("a", 1, now=3.0) is None  # a's own newer replies pushed it out
    assert len(cache) == 8


def test_replies_age_out_and_bytes_are_bounded() -> None:
    cache = ReplyCache(per_client=100, client_bytes=1000, age=10.0, clients=8)
    cache.put("a", 1, b"x" * 400, now=0.0)
    cache.put("a", 2, b"x" * 400, now=5.0)
    cache.put("a", 3, b"x" * 400, now=6.0)  # 1200 bytes: the oldest goes
    assert cache.get("a", 1, now=6.0) is None and cache.get("a", 2, now=6.0) is not None
    assert cache.get("a", 2, now=15.5) is None and cache.get("a", 3, now=15.5) is not None  # age
    cache.expire(now=100.0)
    assert len(cache) == 0 and cache.client_count() == 0


def test_the_lease_holder_is_never_forgotten_for_other_clients() -> None:
    cache = ReplyCache(per_client=10, client_bytes=10_000, age=100.0, clients=3)
    cache.put("holder", 7, b"move", now=0.0)
    cache.protected = "holder"
    for i in range(50):
        cache.put(f"c{i}", 1, b"r", now=1.0 + i)
    assert cache.get("holder", 7, now=60.0) == b"move"
    assert cache.client_count() == 3


# ---------------------------------------------------------------- rate limit
def test_the_rate_limit_is_a_token_bucket_per_client() -> None:
    rl = RateLimiter(rate=100.0, burst=10.0)
    assert sum(rl.allow("a", 0.0) for _ in range(50)) == 10  # the burst
    assert rl.allow("b", 0.0)  # others are not affected
    assert not rl.allow("a", 0.005) and rl.allow("a", 0.011)  # 100 per second: one every 10 ms
    assert not rl.allow("a", 0.0)  # an earlier time (a stop judged first) refills nothing
    assert not RateLimiter(100.0, 10.0).allow("c", 0.0, tokens=cost(64 * 1024))  # 65 tokens > burst


# ---------------------------------------------------------------- faults
def test_faults_are_counted_and_bounded() -> None:
    f = LatchedFaults(limit=3)
    for i in range(1000):
        f.add("stop requested")
        f.add(f"stop {i}")
    assert f.texts() == ["stop requested", "stop 0", "stop 1", OVERFLOW]
    assert f.counts() == [1000, 1, 1, 998]
    f.add("x" * 10_000)
    assert max(map(len, f.texts())) <= 300
    f.clear()
    assert not f and f.texts() == []


# ---------------------------------------------------------------- decoding
@pytest.mark.parametrize("depth,code", [(7, None), (8, None), (9, Code.TOO_LARGE), (1000, Code.TOO_LARGE),
                                        (100_000, Code.TOO_LARGE)])
def test_nesting_is_bounded_without_recursion(depth: int, code: Code | None) -> None:
    data = b"\x81" + msgpack.packb("k") + b"\x91" * (depth - 1) + b"\xc0"  # a map, then arrays
    if code is None:
        assert unpack(data)
    else:
        with pytest.raises(WireError) as exc:
            unpack(data)
        assert exc.value.code is code and "nested" in exc.value.message


@pytest.mark.parametrize("value", [msgpack.ExtType(5, b"x"), msgpack.Timestamp(1, 0), b"\x00"])
def test_extension_types_and_binary_are_bad_messages(value: object) -> None:
    with pytest.raises(WireError) as exc:
        unpack(msgpack.packb({"v": 1, "args": {"q": [value]}}, use_bin_type=True))
    assert exc.value.code is Code.BAD_MESSAGE


def test_untrusted_values_are_described_not_printed() -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    assert describe(deep) == "an array of 1 values"
    assert len(describe("x" * 100_000)) < 40 and len(describe(10**30)) < 50


# ---------------------------------------------------------------- the page
def _bounds_section() -> str:
    text = (ROOT / "docs" / "protocol.md").read_text()
    return text[text.index("## 11. Bounds"):text.index("## 12.")]


def _n(x: int) -> str:
    return f"{x:,}".replace(",", " ")


@pytest.mark.parametrize("row,values", [
    ("request frame, `follow`", [_n(b.MAX_FOLLOW_MESSAGE)]),
    ("request frame, every other op", [_n(b.MAX_COMMAND_MESSAGE)]),
    ("frame at the socket", [_n(b.MAX_SOCKET_MESSAGE)]),
    ("data frames per request", [str(b.MAX_FRAMES)]),
    ("array elements", [_n(b.MAX_ARRAY)]),
    ("map keys", [str(b.MAX_MAP)]),
    ("string bytes", [str(b.MAX_STR)]),
    ("nesting of arrays", [str(b.MAX_DEPTH)]),
    ("messages queued per connection", [str(b.RCVHWM)]),
    ("error message", [str(b.MAX_REPLY_MSG)]),
    ("replies queued per connection", [str(b.SNDHWM)]),
    ("requests read but not yet handled", [str(b.QUEUE_MESSAGES), f"{b.QUEUE_BYTES // 2**20} MiB"]),
    ("of them from one connection", [str(b.CONNECTION_QUEUE)]),
    ("motion commands being planned", [str(b.MAX_PLANS)]),
    ("retries of one id waiting", [str(b.MAX_WAITING_RETRIES)]),
    ("`deadline`", [f"{b.MAX_DEADLINE:g}"]),
    ("`speed`", [f"[{b.MIN_SPEED:g}, 1]"]),
    ("motion duration", [f"{b.MAX_MOTION_DURATION:g} s"]),
    ("trajectory samples", [_n(b.MAX_TRAJECTORY_SAMPLES)]),
    ("`follow` sample spacing", [f"{b.MIN_SAMPLE_INTERVAL:.4f}"]),
    ("servo `dt`", [f"[{b.SERVO_DT[0]:g}, {b.SERVO_DT[1]:g}]"]),
    ("gripper `force`", [f"{b.MAX_GRIPPER_FORCE:g}] N"]),
    ("`stop` `reason`", [str(b.MAX_STOP_REASON)]),
    ("latched faults", [str(b.MAX_FAULTS)]),
    ("request rate per client", [f"{b.RATE:.0f} requests/s", f"burst {b.RATE_BURST}"]),
    ("reply cache per client", [str(b.CACHE_PER_CLIENT), f"{b.CACHE_CLIENT_BYTES // 1024} KiB", f"{b.CACHE_AGE:g} s"]),
    ("clients with a reply cache", [str(b.CACHE_CLIENTS)]),
    ("audit file", [f"{b.AUDIT_MAX_BYTES // 2**20} MiB", f"{b.AUDIT_KEEP} rotated"]),
    ("audit lines per", [f"{b.AUDIT_BURST}, then {b.AUDIT_RATE:g} per second"]),
])
def test_the_bounds_table_matches_the_server(row: str, values: list[str]) -> None:
    lines = [ln for ln in _bounds_section().splitlines() if ln.startswith("| " + row)]
    assert len(lines) == 1, f"no single row '{row}' in protocol.md §11"
    for v in values:
        assert v in lines[0], (v, lines[0])


def test_every_code_in_the_bounds_table_is_a_reply_code() -> None:
    codes = set(re.findall(r"`([A-Z_]{4,})`", _bounds_section()))
    assert codes and codes <= {c.value for c in Code} | {"ZMQ_MAXMSGSIZE", "ZMQ_RCVHWM", "ZMQ_SNDHWM"}, codes
