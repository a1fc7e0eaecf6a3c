"""A bare DEALER client for protocol tests: sends exactly the bytes a test builds."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import msgpack
import zmq

from robocell.hardware.protocol import VERSION


class RawClient:
    def __init__(self, endpoint: str, timeout: float = 5.0) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.timeout = timeout
        # ids are unique per client key (the server caches replies by key and id): random start
        self.ids = itertools.count(secrets.randbits(40) << 20)
        self.lease: str | None = None

    def send_raw(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def recv(self) -> dict[str, Any]:
        if not self.sock.poll(int(self.timeout * 1000)):
            raise TimeoutError("no reply from the server")
        out: dict[str, Any] = msgpack.unpackb(self.sock.recv(), raw=False)
        return out

    def msg(self, op: str, args: dict[str, Any] | None = None, *, rid: int | None = None,
            deadline: float = 2.0, lease: bool = True) -> dict[str, Any]:
        m: dict[str, Any] = {"v": VERSION, "op": op, "id": next(self.ids) if rid is None else rid,
                             "deadline": deadline}
        if lease and self.lease:
            m["lease"] = self.lease
        if args is not None:
            m["args"] = args
        return m

    def call(self, op: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        m = self.msg(op, args, **kw)
        self.sock.send(msgpack.packb(m, use_bin_type=True))
        while True:
            rep = self.recv()
            if rep.get("id") == m["id"]:
                return rep

    def acquire(self) -> str:
        rep = self.call("lease_acquire")
        assert rep["ok"], rep
        self.lease = rep["result"]["token"]
        return self.lease

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()
