"""Waiting for an arm server that may still be starting, and saying plainly why it did not answer.

A client started at the same moment as ``robocell serve`` (the README's quick
start: ``serve … &`` then ``run …``) finds nothing listening for the seconds
the server spends loading PyBullet and the arm model.  :class:`ConnectWatch`
follows the command socket's ZeroMQ events while the client waits for it
within its *connect deadline* (``DEFAULT_CONNECT_TIMEOUT``, docs/protocol.md
§7), so that on expiry the message can tell "nothing listens there" from "a
server answered but the CURVE handshake failed" from "connected, but no reply
to hello".  Only ``hello`` is ever repeated while waiting: it changes nothing.
"""

from __future__ import annotations

import collections

import zmq

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
