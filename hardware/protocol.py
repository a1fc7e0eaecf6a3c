"""The robocell arm wire protocol, version 1 (see docs/protocol.md).

Every message is one ZeroMQ frame holding one msgpack map.  This module is
the only place that turns bytes into values: it bounds sizes, refuses
anything that is not plain data (no extension types, no pickles), and checks
each field's type and range, so the server's handlers only ever see
well-formed requests.  Errors raise :class:`WireError` carrying an error code
from :class:`Code`; the server answers with that code and changes nothing.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from robocell.hardware.bounds import MAX_ARRAY as MAX_ARRAY
from robocell.hardware.bounds import MAX_COMMAND_MESSAGE as MAX_COMMAND_MESSAGE
from robocell.hardware.bounds import MAX_DEADLINE, MAX_DEPTH, MAX_FOLLOW_MESSAGE, MAX_REPLY_MSG
from robocell.hardware.bounds import MAX_MAP as MAX_MAP
from robocell.hardware.bounds import MAX_SOCKET_MESSAGE as MAX_SOCKET_MESSAGE
from robocell.hardware.bounds import MAX_STR as MAX_STR

VERSION = 1
MAX_MESSAGE = MAX_FOLLOW_MESSAGE  # bytes: the largest request (follow); every other op: MAX_COMMAND_MESSAGE
MAX_ID = 2**64 - 1
_PLAIN = frozenset({type(None), bool, int, float, str})  # the only scalar types a request may hold


class Code(str, enum.Enum):
    """Error codes in replies (``code`` field); ``OK`` on success."""

    OK = "OK"
    BAD_MESSAGE = "BAD_MESSAGE"  # not a msgpack map, or truncated, or extra frames
    BAD_VERSION = "BAD_VERSION"  # missing or unsupported ``v``
    TOO_LARGE = "TOO_LARGE"  # frame above MAX_MESSAGE, or an array/map/string too long
    UNKNOWN_OP = "UNKNOWN_OP"
    BAD_FIELD = "BAD_FIELD"  # missing, unknown, wrongly typed or out-of-range field
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"  # the command waited longer than its deadline
    NO_LEASE = "NO_LEASE"  # a motion command without this client's valid lease token
    LEASE_HELD = "LEASE_HELD"  # another client holds the lease
    SAFETY = "SAFETY"  # outside the safety envelope (joint, speed, accel, workspace, NaN)
    UNREACHABLE = "UNREACHABLE"  # no verified IK solution
    STOPPED = "STOPPED"  # protective stop latched; send reset
    BUSY = "BUSY"  # a motion is running; stop it or wait
    RATE_LIMITED = "RATE_LIMITED"  # this client sent more requests per second than the server takes
    FAULT = "FAULT"  # the driver reports a hardware fault
    UNSUPPORTED = "UNSUPPORTED"  # the driver cannot do this (e.g. no gripper)
    INTERNAL = "INTERNAL"  # a server bug; the arm was stopped


class WireError(Exception):
    """A request that breaks the protocol; becomes an error reply with ``code``."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- encoding
def pack(obj: Mapping[str, Any]) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, enum.Enum):
        return obj.value
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _no_ext(code: int, data: bytes) -> Any:
    raise WireError(Code.BAD_MESSAGE, f"msgpack extension type {code} is not allowed; send plain msgpack values")


def unpack(frame: bytes | memoryview, max_str: int = MAX_STR, limit: int = MAX_MESSAGE) -> dict[str, Any]:
    """Decode one frame into a map, refusing oversize, truncated, too deeply nested or non-map input.

    The decoder itself never recurses in Python (msgpack's C stack is bounded; deeper input
    raises StackError), and :func:`check_plain` walks the result without recursion before
    anything else touches it: a value nested 1,000 levels deep must never reach ``repr``.
    """
    if len(frame) > limit:
        raise WireError(Code.TOO_LARGE, f"message of {len(frame)} bytes exceeds the limit of {limit} bytes")
    try:
        obj = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_no_ext,
            max_str_len=max_str,
            max_bin_len=max_str,
            max_array_len=MAX_ARRAY,
            max_map_len=MAX_MAP,
        )
    except WireError:
        raise
    except msgpack.StackError:
        raise WireError(Code.TOO_LARGE, f"message nested deeper than the limit of {MAX_DEPTH} levels") from None
    except ValueError as exc:  # msgpack raises ValueError subclasses for limits and extra data
        text = str(exc)[:200]
        code = Code.TOO_LARGE if "exceeds" in text or "max_" in text else Code.BAD_MESSAGE
        raise WireError(code, f"undecodable message: {text}") from None
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types on garbage; all mean "malformed"
        raise WireError(Code.BAD_MESSAGE, f"undecodable message ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(obj, dict):
        raise WireError(Code.BAD_MESSAGE, f"a message must be a msgpack map, got {describe(obj)}")
    check_plain(obj)
    return obj


def check_plain(obj: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than ``max_depth`` and any value that is not plain data.

    Iterative (an explicit stack), so any depth costs no Python recursion; each container's
    element types are collected by ``set(map(type, ...))`` in C, so a 100,000-number
    trajectory costs milliseconds, a small request microseconds.
    """
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        items = node.values() if type(node) is dict else node
        kinds = set(map(type, items))
        if kinds <= _PLAIN:
            continue
        odd = kinds - _PLAIN - {list, dict}
        if odd:
            name = sorted(t.__name__ for t in odd)[0]
            what = "binary data" if name == "bytes" else f"a {name} (msgpack extension type)"
            raise WireError(Code.BAD_MESSAGE, f"a request holds {what}; only nil, booleans, integers, floats, "
                                              "strings, arrays and maps are allowed")
        if depth >= max_depth:
            raise WireError(Code.TOO_LARGE, f"message nested deeper than the limit of {max_depth} levels")
        stack.extend((x, depth + 1) for x in items if type(x) is list or type(x) is dict)


def describe(value: Any) -> str:
    """A short, bounded description of an untrusted value, safe for error messages and the audit log.

    Never ``repr`` of a container (its size and nesting are the sender's choice).
    """
    if isinstance(value, str):
        return repr(value[:32]) + ("..." if len(value) > 32 else "")
    if value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
        return text if len(text) <= 40 else text[:40] + "..."
    if isinstance(value, list):
        return f"an array of {len(value)} values"
    if isinstance(value, dict):
        return f"a map of {len(value)} keys"
    return f"a {type(value).__name__}"


def _names(keys: Any, limit: int = 8) -> str:
    """At most ``limit`` of a message's field names, each shortened (names are the sender's choice)."""
    names = sorted(describe(k) if not isinstance(k, str) else k[:32] for k in keys)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# ---------------------------------------------------------------- field checks
def _field(msg: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in msg:
        raise WireError(Code.BAD_FIELD, f"{where}: missing field '{key}'")
    return msg[key]


def get_float(msg: Mapping[str, Any], key: str, where: str, *, lo: float | None = None,
              hi: float | None = None, default: float | None = None, positive: bool = False) -> float:
    if key not in msg and default is not None:
        return default
    v = _field(msg, key, where)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' must be a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise WireError(Code.SAFETY, f"{where}: field '{key}' = {f} is not a finite number")
    if positive and f <= 0:
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' = {f} must be positive")
    if (lo is not None and f < lo) or (hi is not None and f > hi):
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' = {f!r} is outside [{lo!r}, {hi!r}]; "
                                        "give a value in that range")
    return f


def get_bool(msg: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    v = msg.get(key, default)
    if not isinstance(v, bool):
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' must be true or false, got {type(v).__name__}")
    return v


def get_str(msg: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    if key not in msg and default is not None:
        return default
    v = _field(msg, key, where)
    if not isinstance(v, str):
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' must be a string, got {type(v).__name__}")
    return v


def get_vector(msg: Mapping[str, Any], key: str, where: str, n: int, names: tuple[str, ...] | None = None) -> np.ndarray:
    """A list of ``n`` finite numbers (NaN/Inf are a SAFETY error naming the joint)."""
    v = _field(msg, key, where)
    if not isinstance(v, list) or len(v) != n:
        got = f"{len(v)} values" if isinstance(v, list) else type(v).__name__
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' must be a list of {n} numbers, got {got}")
    for i, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise WireError(Code.BAD_FIELD, f"{where}: {key}[{i}] must be a number, got {type(x).__name__}")
    arr = np.asarray(v, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        label = f"joint {names[i]}" if names is not None and len(names) == n else f"{key}[{i}]"
        raise WireError(Code.SAFETY, f"{where}: {label} = {arr[i]} is not a finite number")
    return arr


def get_matrix(msg: Mapping[str, Any], key: str, where: str, cols: int, max_rows: int) -> np.ndarray:
    """A list of rows, each a list of ``cols`` finite numbers."""
    v = _field(msg, key, where)
    if not isinstance(v, list) or not v or len(v) > max_rows:
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' must be a list of 1..{max_rows} rows")
    for i, row in enumerate(v):
        if not isinstance(row, list) or len(row) != cols:
            raise WireError(Code.BAD_FIELD, f"{where}: {key}[{i}] must be a list of {cols} numbers")
        for x in row:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise WireError(Code.BAD_FIELD, f"{where}: {key}[{i}] must hold numbers only")
    arr = np.asarray(v, dtype=float)
    if not np.all(np.isfinite(arr)):
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise WireError(Code.SAFETY, f"{where}: {key}[{i}][{j}] = {arr[i, j]} is not a finite number")
    return arr


def get_pose(msg: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    """A 4x4 homogeneous transform given as 16 numbers, row-major, with a proper rotation."""
    flat = get_vector(msg, key, where, 16)
    T = flat.reshape(4, 4)
    R = T[:3, :3]
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6) \
            or not np.isclose(np.linalg.det(R), 1.0, atol=1e-6):
        raise WireError(Code.BAD_FIELD, f"{where}: field '{key}' is not a rigid transform "
                                        "(rotation must be orthonormal with det +1, last row 0 0 0 1)")
    return T


# ---------------------------------------------------------------- envelope
OPS = frozenset({
    "hello", "state", "move_joints", "move_pose", "follow", "servo", "servo_end", "gripper", "stop", "reset",
    "lease_acquire", "lease_release", "heartbeat", "world", "motion", "stats",
})
# Operations that need the caller to hold the lease (observers may call the others).
LEASED_OPS = frozenset({"move_joints", "move_pose", "follow", "servo", "servo_end", "gripper", "reset",
                        "lease_release"})
# Operations answered without a reply (fire and forget).
NO_REPLY_OPS = frozenset({"heartbeat"})
ENVELOPE_KEYS = frozenset({"v", "op", "id", "deadline", "lease", "args"})


@dataclass(frozen=True)
class Request:
    """A decoded command envelope; ``args`` is checked by the handler of ``op``."""

    op: str
    id: int
    deadline: float  # s after receipt by which the server must have started it
    lease: str | None
    args: dict[str, Any]


def parse_request(msg: Mapping[str, Any]) -> Request:
    v = msg.get("v")
    if type(v) is not int or v != VERSION:  # 1.0 and True compare equal to 1: refuse them
        raise WireError(Code.BAD_VERSION, f"protocol version {describe(v)} is not supported; this server speaks v{VERSION}")
    extra = set(msg) - ENVELOPE_KEYS
    if extra:
        raise WireError(Code.BAD_FIELD, f"unknown envelope field(s): {_names(extra)}; "
                                        f"allowed: {', '.join(sorted(ENVELOPE_KEYS))}")
    op = msg.get("op")
    if not isinstance(op, str):
        raise WireError(Code.BAD_FIELD, "field 'op' must be a string naming the operation")
    if op not in OPS:
        raise WireError(Code.UNKNOWN_OP, f"unknown operation '{op[:64]}'; known: {', '.join(sorted(OPS))}")
    rid = msg.get("id")
    if op in NO_REPLY_OPS and rid is None:
        rid = 0
    if isinstance(rid, bool) or not isinstance(rid, int) or not (0 <= rid <= MAX_ID) or (rid == 0 and op not in NO_REPLY_OPS):
        raise WireError(Code.BAD_FIELD, f"field 'id' must be an integer in [1, 2^64-1], got {describe(rid)}")
    deadline = get_float(msg, "deadline", op, lo=0.0, hi=MAX_DEADLINE, default=1.0 if op in NO_REPLY_OPS else None)
    if deadline <= 0:
        raise WireError(Code.BAD_FIELD, f"{op}: field 'deadline' must be positive (seconds)")
    lease = msg.get("lease")
    if lease is not None and (not isinstance(lease, str) or len(lease) > 64):
        raise WireError(Code.BAD_FIELD, "field 'lease' must be the token string from lease_acquire")
    args = msg.get("args", {})
    if not isinstance(args, dict):
        raise WireError(Code.BAD_FIELD, f"{op}: field 'args' must be a map")
    return Request(op=op, id=rid, deadline=deadline, lease=lease, args=args)


def reply(rid: int, code: Code = Code.OK, message: str = "", result: Mapping[str, Any] | None = None,
          seq: int = 0) -> dict[str, Any]:
    """A reply; ``seq`` is the newest state sequence number when it was sent: a state
    with a higher ``seq`` already reflects the command."""
    if len(message) > MAX_REPLY_MSG:
        message = message[:MAX_REPLY_MSG - 3] + "..."
    return {"v": VERSION, "id": rid, "ok": code is Code.OK, "code": code.value, "msg": message,
            "result": dict(result or {}), "seq": seq}


_OK_HEAD = msgpack.packb({"v": VERSION, "ok": True, "code": Code.OK.value, "msg": ""})[1:]  # map body, no header


def packed_reply(rid: int, seq: int, packed_result: bytes) -> bytes:
    """An OK reply around an already packed result (identical to ``pack(reply(...))``)."""
    return (b"\x87" + _OK_HEAD + msgpack.packb("id") + msgpack.packb(rid) + msgpack.packb("seq")
            + msgpack.packb(seq) + msgpack.packb("result") + packed_result)


def check_args(args: Mapping[str, Any], allowed: frozenset[str], op: str) -> None:
    extra = set(args) - allowed
    if extra:
        raise WireError(Code.BAD_FIELD, f"{op}: unknown argument(s) {_names(extra)}; "
                                        f"allowed: {', '.join(sorted(allowed)) or 'none'}")
