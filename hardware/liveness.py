"""The lease's liveness connection: libzmq's heartbeats, not a Python thread, tell a dead client from a busy one.

A client's Python heartbeat thread needs the GIL and the scheduler; on a busy
host it goes quiet for 50-150 ms while the client is perfectly alive, and an
application-level watchdog stops the arm for it.  ZMTP heartbeats
(``ZMQ_HEARTBEAT_IVL``, ZeroMQ >= 4.2) are sent by libzmq's I/O threads,
which a busy Python main thread does not starve.  So on ``lease_acquire`` with
``liveness: true`` the server binds one ROUTER for that lease
(:class:`LivenessChannel`, a random port on the command endpoint's host, CURVE
when the server has keys), the client connects a DEALER (:class:`LivenessLink`)
that PINGs every ``interval`` and binds it to its lease with one message, and
from then on the lease lives as long as that TCP connection does:

- client killed (SIGKILL, crash, exit): its kernel closes the socket; the
  server sees the TCP state leave ESTABLISHED on its next tick;
- client frozen (SIGSTOP: its I/O thread is stopped too) or cut off by the
  network: no bytes arrive, and after ``deadline`` of that the server stops
  the arm;
- client busy in Python: its I/O thread still PINGs, nothing happens.

**Who judges the silence.**  Not libzmq's ``ZMQ_HEARTBEAT_TIMEOUT``: its timer
fires in the I/O thread, and after that thread was itself descheduled (a
loaded host, a stalled VM) it can fire before the PONG already waiting in the
socket is read, dropping a live client.  The server's control thread instead
asks the kernel (``TCP_INFO``: the connection's state, and the time since
data last *arrived*, stamped by the kernel whether or not anyone read it), so
a stall on the server side does not make a client look silent.  Where
``TCP_INFO`` is missing (not Linux), libzmq's timeout is the judge.

The connection is matched to its lease by the descriptor its bind message came
from (``ZMQ_SRCFD``); other connections to the port (a scanner, a confused
client) can neither keep the lease alive nor end it.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from robocell.errors import ConfigError, ConnectionLost
from robocell.hardware.protocol import VERSION, Code, WireError, pack, unpack

# bytes a peer may send in one frame (ZMQ_MAXMSGSIZE; more drops the connection): the bind message is ~50,
# but the limit applies to the handshake's frames too, and a CURVE INITIATE with its metadata is several hundred
MAX_BIND_MESSAGE = 4096
MAX_DEAD_FDS = 4096  # descriptors remembered as closed before a bind message from them was read
PER_TICK = 8  # bind messages read per control tick at most (monitor events: 8 times that)
MIN_DEADLINE, MAX_DEADLINE = 0.01, 5.0  # s; libzmq heartbeat timers have 1 ms resolution
# s: how long libzmq itself lets a connection go quiet before dropping it (the client's own timeout, the
# server's TTL and, with TCP_INFO, the server's libzmq timeout). Long on purpose: a libzmq timeout can fire
# right after its I/O thread was descheduled, before reading the PING/PONG already waiting for it, and a
# dropped liveness connection stops the arm. The short deadline is judged from TCP_INFO instead.
LIBZMQ_TIMEOUT = 5.0
HEARTBEAT = 0.01  # s between application heartbeats; the server's watchdog default is 50 ms
KERNEL_JUDGE = sys.platform.startswith("linux") and hasattr(socket, "TCP_INFO")
_TCP_ESTABLISHED = 1
_TCPI_LAST_DATA_RECV = 52  # byte offset of tcpi_last_data_recv (ms) in struct tcp_info (linux/tcp.h)


@dataclass(frozen=True)
class Heartbeat:
    """ZMTP heartbeat timing for a liveness deadline: both ends PING every ``interval``."""

    interval: float  # s between PINGs
    deadline: float  # s without any bytes from the holder before the server stops the arm

    @classmethod
    def for_deadline(cls, deadline: float) -> Heartbeat:
        # five PINGs per deadline: a client I/O thread descheduled for most of a deadline still gets one through
        return cls(max(1, int(round(deadline * 1000)) // 5) / 1000, deadline)

    def configure(self, sock: zmq.Socket[bytes], *, server: bool) -> None:
        sock.setsockopt(zmq.HEARTBEAT_IVL, max(1, int(round(self.interval * 1000))))
        # libzmq's timeout defaults to the interval: set it, or a 10 ms hiccup drops the connection
        timeout = self.deadline - self.interval if server and not KERNEL_JUDGE else LIBZMQ_TIMEOUT
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, max(1, int(round(timeout * 1000))))
        if server:
            # tells a peer that does not set its own timeout (a raw client) to drop a vanished server
            # (libzmq counts the TTL in tenths of a second)
            sock.setsockopt(zmq.HEARTBEAT_TTL, int(LIBZMQ_TIMEOUT * 1000))


def check_deadline(value: float, option: str) -> None:
    if not (MIN_DEADLINE <= value <= MAX_DEADLINE):
        raise ConfigError(f"{option} {value} s is outside [{MIN_DEADLINE}, {MAX_DEADLINE}] s; it is how long the "
                          "controlling client's liveness connection may go without a heartbeat before the "
                          "server stops the arm (default 0.05)")


_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)  # plain ints: enum arithmetic costs microseconds a tick


def _readable(sock: zmq.Socket[bytes]) -> bool:
    # EVENTS, not a NOBLOCK recv raising Again: the control thread asks every tick
    return bool(int(sock.getsockopt(_EVENTS)) & _POLLIN)


def _host_endpoint(endpoint: str, port: int | str) -> str:
    head, _, _ = endpoint.rpartition(":")
    return f"{head}:{port}"


class LivenessChannel:
    """The server's end for one lease; owned by the control thread, which calls :meth:`poll` every tick."""

    def __init__(self, make_socket: Callable[[int], zmq.Socket[bytes]], command_endpoint: str, heartbeat: Heartbeat,
                 *, secure: bool) -> None:
        self.heartbeat = heartbeat
        self.secure = secure
        sock = make_socket(zmq.ROUTER)
        try:
            heartbeat.configure(sock, server=True)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_BIND_MESSAGE)
            sock.setsockopt(zmq.RCVHWM, 4)  # the holder sends one message; anything more waits or is dropped
            sock.setsockopt(zmq.SNDHWM, 4)
            sock.bind(_host_endpoint(command_endpoint, 0))
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self.monitor: zmq.Socket[bytes] = sock.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        except BaseException:
            sock.close(linger=0)
            raise
        self.sock = sock
        self.port = int(self.endpoint.rpartition(":")[2])
        self.bound_fd: int | None = None  # the holder's connection, once its bind message was accepted
        self.lost: str | None = None  # why the holder's connection is gone (set once)
        self.silent: float | None = None  # s since bytes last arrived from the holder (kernel clock); None: unknown
        self._tcp: socket.socket | None = None  # a duplicate of the holder's descriptor, for TCP_INFO
        self._dead: set[int] = set()  # descriptors that closed before we read anything from them

    @property
    def bound(self) -> bool:
        return self.bound_fd is not None and self.lost is None

    def describe(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "port": self.port, "interval": self.heartbeat.interval,
                "deadline": self.heartbeat.deadline}

    def poll(self, token: str | None, key: str | None) -> None:
        """Read bind requests, then connection events (messages first: see :meth:`_events`), then TCP_INFO."""
        sock = self.sock
        for _ in range(PER_TICK):  # a flood of messages or connections costs the control loop no more
            if not _readable(sock):
                break
            self._bind_request(sock.recv_multipart(copy=False), token, key)
        self._events()
        if self._tcp is not None and self.lost is None:
            self._kernel_view(self._tcp)

    def _kernel_view(self, tcp: socket.socket) -> None:
        try:
            info = tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        except OSError as exc:
            self._drop(f"the server could not read the connection's TCP state ({exc})")
            return
        if info[0] != _TCP_ESTABLISHED:
            self._drop("the connection closed (the client exited, was killed, or closed it)")
            return
        self.silent = struct.unpack_from("I", info, _TCPI_LAST_DATA_RECV)[0] / 1000.0

    def _events(self) -> None:
        # A connection's bind message is queued before its DISCONNECTED event is emitted, but the two
        # reach this thread by different pipes: a drop seen before its message is remembered (by
        # descriptor, until a new connection is accepted on it) so the late message cannot bind a corpse.
        from zmq.utils.monitor import parse_monitor_message

        mon = self.monitor
        for _ in range(8 * PER_TICK):
            if not _readable(mon):
                break
            ev = parse_monitor_message(mon.recv_multipart())
            fd = int(ev["value"])
            if ev["event"] == zmq.EVENT_ACCEPTED:
                self._dead.discard(fd)
            elif fd == self.bound_fd:
                self._drop("the connection closed (the client exited, was killed or closed it)" if KERNEL_JUDGE else
                           f"the connection closed, or went {self.heartbeat.deadline * 1000:.0f} ms without a "
                           "heartbeat (the client process frozen, or the network cut)")
            else:
                if len(self._dead) >= MAX_DEAD_FDS:
                    self._dead.clear()
                self._dead.add(fd)

    def drop_silent(self, silent: float) -> str:
        """The holder went quiet past its limit (the caller judged it): give up on the connection."""
        self._drop(f"nothing from the client, neither heartbeats nor commands, for {silent * 1000:.0f} ms "
                   "(the client process frozen, or the network cut)")
        assert self.lost is not None
        return self.lost

    def _drop(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
        if self._tcp is not None:
            self._tcp.close()  # our duplicate must not keep the TCP connection open
            self._tcp = None

    def _bind_request(self, frames: list[zmq.Frame], token: str | None, key: str | None) -> None:
        ident = frames[0].bytes
        try:
            if len(frames) != 2:
                raise WireError(Code.BAD_MESSAGE, f"liveness: expected 1 frame, got {len(frames) - 1}")
            msg = unpack(frames[1].bytes)
            if type(msg.get("v")) is not int or msg.get("v") != VERSION:
                raise WireError(Code.BAD_VERSION, f"liveness: protocol version {msg.get('v')!r} is not supported")
            sender = str(frames[1].get("User-Id")) if self.secure else "anonymous"
            if token is None or msg.get("lease") != token or sender != key:
                raise WireError(Code.LEASE_HELD, "liveness: this is not the current lease's token (or key); "
                                                 "send the token lease_acquire returned, from the same client key")
            fd = int(frames[1].get(zmq.SRCFD))
            if fd in self._dead:
                return  # that connection closed already: nobody is there to answer
            if self.bound_fd is not None:
                if self.bound_fd != fd:
                    raise WireError(Code.LEASE_HELD, "liveness: this lease is bound to another connection already")
            else:
                if KERNEL_JUDGE:
                    self._tcp = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)  # a dup: ours to close
                self.bound_fd = fd
            self._reply(ident, Code.OK, "")
        except WireError as exc:
            self._reply(ident, exc.code, exc.message)

    def _reply(self, ident: bytes, code: Code, msg: str) -> None:
        try:
            self.sock.send_multipart([ident, pack({"v": VERSION, "ok": code is Code.OK, "code": code.value,
                                                   "msg": msg})], zmq.NOBLOCK)
        except zmq.Again:
            return  # a peer that does not read its replies gets none; nothing here waits for it

    def close(self) -> None:
        try:
            self._drop(self.lost or "closed by the server")
            self.sock.disable_monitor()
        finally:
            self.monitor.close(linger=0)
            self.sock.close(linger=0)


class LivenessLink:
    """The client's end: a DEALER bound to its lease; never reconnected (a new connection needs a new lease)."""

    def __init__(self, secure: Callable[[zmq.Socket[bytes]], None], command_address: str, offer: dict[str, Any],
                 token: str, timeout: float, keepalive: Callable[[], None]) -> None:
        self.port = int(offer["port"])
        self.heartbeat = Heartbeat(float(offer["interval"]), float(offer["deadline"]))
        endpoint = (_host_endpoint(command_address, self.port) if command_address.startswith("tcp://")
                    else str(offer["endpoint"]))
        self.endpoint = endpoint
        # its own context, so its own I/O thread: one that only PINGs, never queued behind the client's
        # command and state traffic, and that the scheduler wakes first because it uses almost no CPU
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context(io_threads=1)
        d = self.ctx.socket(zmq.DEALER)
        secure(d)
        self.heartbeat.configure(d, server=False)
        d.setsockopt(zmq.RECONNECT_IVL, -1)  # a dropped link means a lost lease, never a silent reconnect
        d.setsockopt(zmq.MAXMSGSIZE, 4096)
        self.sock = d
        self.monitor: zmq.Socket[bytes] = d.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.lost: str | None = None
        try:
            d.connect(endpoint)
            self._bind(token, timeout, keepalive)
        except BaseException:
            self.close()
            raise

    def _bind(self, token: str, timeout: float, keepalive: Callable[[], None]) -> None:
        """Send the bind message and wait for its reply, ``keepalive()`` every 0.1 s meanwhile.

        Until it is bound the lease is kept by application messages (a loaded server may take
        a while to read the bind message): ``keepalive`` sends them.
        """
        self.sock.send(pack({"v": VERSION, "lease": token}))
        t_end = time.monotonic() + timeout
        while not self.sock.poll(int(max(0.0, min(0.1, t_end - time.monotonic())) * 1000) + 1, zmq.POLLIN):
            if time.monotonic() >= t_end:
                break
            keepalive()
        if not self.sock.poll(0, zmq.POLLIN):
            raise ConnectionLost(
                f"the arm server offered a liveness connection at {self.endpoint} but it did not answer there within "
                f"{timeout:.2f} s (a firewall that lets only the command and state ports through?); let that port "
                "through, or connect with liveness=False to keep the lease with application heartbeats instead")
        try:
            rep = unpack(self.sock.recv())
        except WireError as exc:
            raise ConnectionLost(f"the liveness connection at {self.endpoint} sent an undecodable reply "
                                 f"({exc.message})") from None
        if not rep.get("ok"):
            raise ConnectionLost(f"the arm server refused to bind the lease to its liveness connection: "
                                 f"{rep.get('msg')} [server code {rep.get('code')}]")

    def check(self) -> str | None:
        """Why the link dropped (and with it the lease), or None while it is up."""
        if self.lost is None and _readable(self.monitor):
            self.lost = (f"the liveness connection to the arm server ({self.endpoint}) dropped: the server exited "
                         f"or was killed, or it ended the lease (it heard nothing from this client for its "
                         f"{self.heartbeat.deadline * 1000:.0f} ms deadline: this process frozen, or the network "
                         "cut); the server has stopped the arm if it was moving, and this client's lease is gone")
        return self.lost

    def close(self) -> None:
        try:
            self.sock.disable_monitor()
        finally:
            self.monitor.close(linger=0)
            self.sock.close(linger=0)
            self.ctx.term()


def send_heartbeats(ctx: zmq.Context[zmq.Socket[bytes]], secure: Callable[[zmq.Socket[bytes]], None], endpoint: str,
                    stop: threading.Event, token: Callable[[], str | None]) -> None:
    """Application heartbeats to ``endpoint`` every HEARTBEAT s until ``stop``, while ``token()`` names a
    lease (a client's heartbeat thread, when no liveness connection keeps its lease)."""
    s = ctx.socket(zmq.DEALER)
    secure(s)
    s.setsockopt(zmq.IMMEDIATE, 1)
    s.setsockopt(zmq.SNDHWM, 2)
    s.connect(endpoint)
    try:
        while not stop.wait(HEARTBEAT):
            lease = token()
            if lease is None:
                continue  # no lease, or its liveness connection keeps it
            try:
                s.send(pack({"v": VERSION, "op": "heartbeat", "lease": lease}), zmq.NOBLOCK)
            except zmq.Again:
                continue  # not connected right now; the watchdog will act if this lasts
    finally:
        s.close(linger=0)
