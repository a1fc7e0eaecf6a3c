"""Reading a server's state stream message by message: arrival times, and the telemetry it carries.

:class:`~robocell.hardware.client.Connection` keeps only the newest state (a
conflated socket), which is right for control and wrong for measuring: a
conflated subscriber cannot see the periods between states, and it would drop
most of the states that carry telemetry (about one a second, docs/protocol.md
§5b).  :class:`StateStream` keeps every message, bounded by its receive
high-water mark, and stamps each with this host's monotonic clock on arrival.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import zmq

from robocell.hardware.protocol import VERSION, WireError, unpack
from robocell.hardware.security import ClientKeys, secure_client_socket
from robocell.hardware.telemetry import FIELD, MARKER

RECEIVE_QUEUE = 10_000  # messages held unread (10 s at 1 kHz); beyond it ZeroMQ drops the newest


@dataclass(frozen=True)
class Received:
    """One state message: when it arrived here (monotonic s) and its decoded map."""

    at: float
    state: dict[str, Any]

    @property
    def telemetry(self) -> dict[str, Any] | None:
        tel = self.state.get(FIELD)
        return tel if isinstance(tel, dict) else None


class StateStream:
    """A SUB socket on a server's state endpoint that keeps every message (not conflated)."""

    def __init__(self, endpoint: str, keys: ClientKeys | None = None, *, telemetry_only: bool = False) -> None:
        """``telemetry_only``: decode only the messages that carry telemetry (the others are read
        and dropped unopened, so watching a 1 kHz stream costs little)."""
        self.endpoint = endpoint
        self.telemetry_only = telemetry_only
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
        secure_client_socket(self.sock, keys)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.undecodable = 0  # messages that were not a state map of protocol v1

    def recv(self, timeout: float) -> Received | None:
        """The next message within ``timeout`` s (telemetry-carrying ones only if ``telemetry_only``)."""
        t_end = time.monotonic() + timeout
        while True:
            left = t_end - time.monotonic()
            if left <= 0 or not self.sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                return None
            while True:
                try:
                    raw = self.sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                at = time.monotonic()
                if self.telemetry_only and MARKER not in raw:
                    continue
                got = self._decode(at, raw)
                if got is not None and (not self.telemetry_only or got.telemetry is not None):
                    return got

    def _decode(self, at: float, raw: bytes) -> Received | None:
        try:
            msg = unpack(raw)
        except WireError:
            self.undecodable += 1
            return None
        if msg.get("v") != VERSION or not isinstance(msg.get("seq"), int):
            self.undecodable += 1
            return None
        return Received(at, msg)

    def collect(self, duration: float, first_within: float) -> Iterator[Received]:
        """Every message for ``duration`` s from the first one, which must come within ``first_within`` s."""
        first = self.recv(first_within)
        if first is None:
            return
        yield first
        t_end = first.at + duration
        while True:
            left = t_end - time.monotonic()
            if left <= 0:
                return
            got = self.recv(left)
            if got is None:
                return
            yield got

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()

    def __enter__(self) -> StateStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
