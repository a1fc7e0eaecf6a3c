"""Waiting for an arm server that may still be starting, and saying plainly why it did not answer.

A client started at the same moment as ``robocell serve`` (the README's quick
start: ``serve … &`` then ``run …``) finds nothing listening for the seconds
the server spends loading PyBullet and the arm model.  :class:`ConnectWatch`
follows the command socket's ZeroMQ events while the client waits for it
within its *connect deadline* (``DEFAULT_CONNECT_TIMEOUT``, docs/protocol.md
§7), so that on expiry the message can tell "nothing listens there" from "a
server answered but the CURVE handshake failed" from "connected, but no reply
to hello".  Only ``hello`` is ever repeated while waiting: it changes nothing
(:func:`say_hello`, the client's first exchange with a server).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import zmq

from robocell.errors import ConnectionLost, ProtocolError
from robocell.hardware.protocol import WireError, unpack
from robocell.hardware.wireerrors import error_for

REPLY_MAX_STR = 1 << 20  # error messages from the server can be long; still bounded

DEFAULT_CONNECT_TIMEOUT = 30.0  # s: `robocell serve` starts in 2-10 s; a loaded 2-core host takes longer

_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                     zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_WATCHED = (zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_DISCONNECTED
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED)


class ConnectWatch:
    """Counts a socket's connection events (refused, connected, handshake failed, ...) while it connects."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock
        self.events: collections.Counter[int] = collections.Counter()
        self.monitor: zmq.Socket[bytes] | None = sock.get_monitor_socket(_WATCHED)

    def drain(self) -> None:
        """Read the events queued so far (call it while waiting: the monitor's queue is bounded)."""
        from zmq.utils.monitor import recv_monitor_message

        if self.monitor is None:
            return
        while self.monitor.poll(0, zmq.POLLIN):
            self.events[int(recv_monitor_message(self.monitor)["event"])] += 1

    def close(self) -> None:
        if self.monitor is not None:
            self.drain()
            self.sock.disable_monitor()
            self.monitor.close(linger=0)
            self.monitor = None

    def what_happened(self, hellos: int, keyed: bool) -> str:
        """One sentence on how far the connection got (``keyed``: the client used CURVE keys)."""
        self.drain()
        ev = self.events
        if ev[zmq.EVENT_HANDSHAKE_SUCCEEDED] or hellos:
            return (f"a server accepted the connection, but none of the {hellos} 'hello' request(s) sent got "
                    "a reply (a server still starting or stalled, or not a robocell server)")
        failed = sum(ev[e] for e in _HANDSHAKE_FAILED)
        if failed:
            # which failure event a mismatch raises varies (and with the host's load), so both sides' cases
            why = ("the server probably runs with --keys: pass --keys with its keys folder" if not keyed else
                   "this client's key is not in the server's authorized/ folder, its server.key is not this "
                   "server's, or the server runs without --keys")
            return f"a server answered, but the security handshake failed {failed} time(s): {why}"
        if ev[zmq.EVENT_CONNECTED]:
            return (f"a TCP connection was made {ev[zmq.EVENT_CONNECTED]} time(s) but the handshake never "
                    "completed (the other side closed it: a wrong server.key, or not a ZeroMQ server)")
        tries = ev[zmq.EVENT_CONNECT_RETRIED] + ev[zmq.EVENT_CONNECT_DELAYED]
        return f"nothing accepted a connection at that address ({tries} attempt(s) refused or unanswered)"


def connect_failure(address: str, limit: float, keys: str, what_happened: str, *, first: bool = True) -> str:
    """The whole message for a client that could not reach a server within its connect deadline.

    ``first``: the first connection (the connect deadline) rather than a reconnect after a lost
    connection (the request timeout).
    """
    deadline = "the connect deadline" if first else "the request timeout (reconnecting after a lost connection)"
    return (
        f"could not connect to the arm server at {address} within {deadline} of {limit:g} s "
        f"({keys}); {what_happened}. Likely causes: `robocell serve` is not running or has not finished "
        "starting (it prints 'robocell serve: arm ... on tcp://...' once it listens); the address or port is "
        "wrong (the server's ready line names its port); the keys do not match (pass the same --keys "
        "folder as the server, with its server.key and a client key listed in its authorized/ folder, or "
        "no --keys for a server started without them). Start the server, check its ready line, and retry; "
        "raise the deadline with --connect-timeout SECONDS (Python: connect_timeout=) for a slow start"
    )


def say_hello(d: zmq.Socket[bytes], watch: ConnectWatch, t_end: float, limit: float,
              envelope: Callable[[str, dict[str, Any] | None, float], tuple[int, bytes]], *, address: str,
              timeout: float, keys_used: str, secure: bool, first: bool) -> dict[str, Any]:
    """Say hello on ``d`` until a reply or ``t_end``: only hello is repeated, since it changes nothing.

    ``envelope`` packs a request with a fresh id; ``keys_used`` and ``secure`` describe this
    client's keys for the message if nothing answers within ``limit``; returns hello's result.
    """
    poller = zmq.Poller()
    poller.register(d, zmq.POLLIN | zmq.POLLOUT)
    if watch.monitor is not None:
        poller.register(watch.monitor, zmq.POLLIN)
    sent: set[int] = set()
    next_hello = 0.0  # when to (re)send: at once, then after each request timeout without a reply
    while True:
        now = time.monotonic()
        left = t_end - now
        if left <= 0:
            raise ConnectionLost(connect_failure(address, limit, keys_used,
                                                 watch.what_happened(len(sent), secure), first=first))
        want_send = now >= next_hello
        # POLLOUT only once the connection (and the CURVE handshake) is complete (ZMQ_IMMEDIATE)
        poller.modify(d, zmq.POLLIN | (zmq.POLLOUT if want_send else 0))
        wait = left if want_send else min(left, next_hello - now)
        events = dict(poller.poll(int(wait * 1000) + 1))
        watch.drain()
        if events.get(d, 0) & zmq.POLLIN:
            try:
                rep = unpack(d.recv(), max_str=REPLY_MAX_STR)
            except WireError as exc:
                raise ProtocolError(f"the server at {address} sent an undecodable reply to hello "
                                    f"({exc.message}); is it a robocell server?") from None
            if rep.get("id") not in sent:
                continue
            if rep.get("ok"):
                result = rep.get("result", {})
                return result if isinstance(result, dict) else {}
            if rep.get("code") == "DEADLINE_EXCEEDED":
                next_hello = 0.0  # the server was still starting when our hello arrived: ask again
                continue
            raise error_for(str(rep.get("code")), str(rep.get("msg")))
        if want_send and events.get(d, 0) & zmq.POLLOUT:
            per_try = min(timeout, max(0.01, t_end - time.monotonic()))
            rid, data = envelope("hello", {"client": "robocell-python"}, per_try)
            try:
                d.send(data, zmq.NOBLOCK)
            except zmq.Again:
                continue  # the connection dropped again: wait for the next one
            sent.add(rid)
            next_hello = time.monotonic() + per_try
