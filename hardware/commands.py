"""The server's command thread: it reads, checks and answers every request on the ROUTER socket.

It reads each request frame by frame (a multipart message longer than one data frame is
discarded unread) into per-connection queues served round-robin, stops and heartbeats first;
bounds each request's size and rate, decodes and checks it, enforces the lease, answers
duplicates from a per-client reply cache (exactly once), hands motions to the planner and
sends the planner's replies when they come back. No input can end it: each message's
handling is wrapped, and a bug becomes an ``INTERNAL`` reply (the arm is stopped) and an
audit line. It owns the ROUTER socket (ZeroMQ sockets are not thread-safe);
:class:`~robocell.hardware.server.ArmServer` assembles it and supervises it.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import zmq

from robocell.errors import RobocellError
from robocell.hardware import ops
from robocell.hardware.bounds import (
    CONNECTION_QUEUE, MAX_COMMAND_MESSAGE, MAX_FOLLOW_MESSAGE, MAX_PLANS, MAX_WAITING_RETRIES, QUEUE_BYTES,
    QUEUE_MESSAGES,
)
from robocell.hardware.protocol import (
    LEASED_OPS, NO_REPLY_OPS, OPS, Code, Request, WireError, pack, packed_reply, parse_request, reply, unpack,
)
from robocell.hardware.ratelimit import cost

if TYPE_CHECKING:
    from robocell.hardware.server import ArmServer

READ_ONLY_OPS = frozenset({"hello", "state", "motion", "world", "stats", "heartbeat"})
MAX_INTERNAL_PRINTS = 20  # INTERNAL errors printed with their cause to stderr (then only counted)

# a request as read: (monotonic receipt time, routing id, first data frame, data frame count)
Received = tuple[float, bytes, zmq.Frame | None, int]
HANDSHAKE_EVENTS: dict[int, str] = {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
                    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed (protocol or mechanism mismatch)"}


class CommandThread:
    """The command side of one :class:`~robocell.hardware.server.ArmServer` (run by its command thread)."""

    def __init__(self, server: ArmServer, running: threading.Event, monitors: list[zmq.Socket[bytes]]) -> None:
        """Share the server's parts this thread uses (the router is this thread's alone)."""
        self.router = server.router
        self.ctx = server.ctx
        self.audit = server.audit
        self.cache = server.cache
        self.counters = server.counters
        self.control = server.control
        self.keys = server.keys
        self.rate = server.rate
        self.lease = server.lease
        self.leases = server.leases
        self.ops = server.ops
        self.traffic = server.traffic
        self._running = running
        self._monitors = monitors
        self._results: collections.deque[tuple[tuple[str, int], bytes, dict[str, Any]]] = collections.deque()
        self._wake = f"inproc://robocell-wake-{id(self)}"
        self._wake_pull = self.ctx.socket(zmq.PULL)
        self._wake_pull.bind(self._wake)
        self._wake_local = threading.local()
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        # requests read but not handled: per connection, served round-robin (a client with many
        # requests in flight waits for its own, not everyone else); stops go before all of them
        self._queues: collections.OrderedDict[bytes, collections.deque[Received]] = collections.OrderedDict()
        self._stops: collections.deque[Received] = collections.deque()
        self._queued = 0
        self._queued_bytes = 0
        self._command_error: BaseException | None = None
        self._current: tuple[str, str, int] = ("?", "?", 0)  # (key, op, id) of the message being handled

    @property
    def error(self) -> BaseException | None:
        """What ended the command thread (a broken socket, a BaseException from a driver call), if anything."""
        return self._command_error

    def queue_depths(self) -> dict[str, int]:
        """Replies being planned (or queued for the planner), planned replies not yet sent, the queues' capacity."""
        return {"planner": len(self._pending), "results": len(self._results), "command_queue_limit": QUEUE_MESSAGES}

    def run(self) -> None:
        """The command thread's body: serve until the server closes; record what ended it otherwise."""
        try:
            self._serve_loop()
        except BaseException as exc:
            # nothing a client sends gets here (each message is wrapped): a broken socket, a
            # BaseException from a driver call. The supervisor (failure()) stops the arm.
            self._command_error = exc
            print(f"robocell serve: the command thread died: {exc!r}", file=sys.stderr, flush=True)

    def _serve_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_pull, zmq.POLLIN)
        for m in self._monitors:
            poller.register(m, zmq.POLLIN)
        next_chores = 0.0
        while self._running.is_set():
            busy = bool(self._stops or self._queued)
            events = dict(poller.poll(0 if busy else 50))
            now = time.monotonic()
            if self._wake_pull in events:
                while True:
                    try:
                        self._wake_pull.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
            while self._results:
                self._finish(*self._results.popleft())
            if now >= next_chores:
                next_chores = now + 0.01
                self.audit.flush_due()
                self.cache.expire(now)
                for m in self._monitors:
                    self._handshake_events(m)
            self._fill()
            # a stop never waits behind commands already read: every stop read so far goes first,
            # and the socket is read again after each command
            if self._stops:
                while self._stops:
                    self._handle_safely(*self._stops.popleft())
            elif self._queued:
                self._handle_safely(*self._next())

    def _fill(self) -> None:
        """Read what has arrived into the per-connection queues, up to QUEUE_MESSAGES and QUEUE_BYTES.

        libzmq bounds each connection in messages (RCVHWM), not bytes; these queues, bounded in
        bytes, are where requests wait, so that a stop read behind them goes first and each
        connection is served in turn. A connection with CONNECTION_QUEUE requests waiting gets
        RATE_LIMITED for more (it sends faster than it reads its replies).
        """
        while self._queued < QUEUE_MESSAGES and self._queued_bytes < QUEUE_BYTES:
            # EVENTS, not a NOBLOCK recv raising Again: exceptions cost more than the whole reply
            if not int(self.router.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                return
            item = self._read()
            self.traffic.heard(item[1], self._queued)
            if _looks_like_stop(item[2], item[3]) or _looks_like_heartbeat(item[2], item[3]):
                # stops, and heartbeats (the watchdog's clock), never wait behind other requests
                self._stops.append(item)
                continue
            queue = self._queues.get(item[1])
            if queue is None:
                queue = self._queues[item[1]] = collections.deque()
            if len(queue) >= CONNECTION_QUEUE:
                self._handle_safely(*item, overflow=True)
                continue
            queue.append(item)
            self._queued += 1
            self._queued_bytes += len(item[2]) if item[2] is not None else 0

    def _next(self) -> Received:
        """The oldest request of the connection whose turn it is (round-robin)."""
        ident, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        if queue:
            self._queues.move_to_end(ident)
        else:
            del self._queues[ident]
        self._queued -= 1
        self._queued_bytes -= len(item[2]) if item[2] is not None else 0
        return item

    def _read(self) -> Received:
        """One message: (time, routing id, its first data frame, data frame count).

        Frame by frame: a message of a million frames is counted and discarded as it is
        read, never held as a list (libzmq cannot limit the number of frames).
        """
        head = self.router.recv(copy=False)
        t_recv = time.monotonic()
        if not head.more:
            return t_recv, head.bytes, None, 0
        data = self.router.recv(copy=False)
        n = 1
        frame = data
        while frame.more:
            frame = self.router.recv(copy=False)
            n += 1
        return t_recv, head.bytes, data, n

    def _handshake_events(self, monitor: zmq.Socket[bytes]) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while monitor.poll(0, zmq.POLLIN):
            ev = recv_monitor_message(monitor)
            what = HANDSHAKE_EVENTS.get(int(ev["event"]))
            if what is None:
                continue
            self.counters["auth_failures"] += 1
            endpoint = ev.get("endpoint", b"")
            where = endpoint.decode("utf-8", "replace") if isinstance(endpoint, bytes) else str(endpoint)
            self.audit.record("unauthenticated", "auth", 0, False, "AUTH_FAILED",
                              f"{what} on {where[:100]} (a client without CURVE keys, or not a ZeroMQ client)",
                              kind=("handshake", "auth", "AUTH_FAILED"))

    def _handle_safely(self, t_recv: float, ident: bytes, data: zmq.Frame | None, frames: int,
                       overflow: bool = False) -> None:
        self._current = ("?", "?", 0)
        try:
            self._handle(t_recv, ident, data, frames, overflow)
        except Exception as exc:  # noqa: BLE001 - no message may end the command thread: answer, audit, go on
            self._internal(ident, exc)

    def _internal(self, ident: bytes, exc: Exception) -> None:
        key, op, rid = self._current
        self.counters["internal"] += 1
        if self.counters["internal"] <= MAX_INTERNAL_PRINTS:
            print(f"robocell serve: internal error handling '{op}' from {key}: {type(exc).__name__}: "
                  f"{str(exc)[:300]}", file=sys.stderr, flush=True)
        text = f"{op}: internal server error ({type(exc).__name__}); the arm was stopped. Please report it"
        self.control.request_stop(f"internal server error handling '{op}' ({type(exc).__name__})")
        try:
            self.router.send_multipart([ident, pack(reply(rid, Code.INTERNAL, text, seq=self.control.seq))])
        except Exception as send_exc:  # noqa: BLE001 - cannot even answer: drop it, and say so in the audit log
            self.counters["dropped"] += 1
            self.audit.record(key, op, rid, False, "INTERNAL", f"{text}; the reply could not be sent "
                              f"({type(send_exc).__name__})")
            return
        self.audit.record(key, op, rid, False, "INTERNAL", f"{text}: {type(exc).__name__}: {str(exc)[:200]}")

    def _handle(self, t_recv: float, ident: bytes, data: zmq.Frame | None, frames: int,
                overflow: bool = False) -> None:
        """Bound a message's framing, size and rate, and decode it (then :meth:`_answer`)."""
        key = self._key_of(data)
        client = key if self.keys is not None else "anonymous/" + ident.hex()
        self._current = (key, "?", 0)
        size = len(data) if data is not None else 0
        # a connection whose queue is full is over its rate whatever its bucket says
        within_rate = self.rate.allow(client, t_recv, cost(size) + frames) and not overflow
        if data is None or frames != 1:
            self._reject(ident, key, "?", 0, WireError(
                Code.BAD_MESSAGE, f"expected 1 data frame, got {frames}; send one msgpack map per message"))
            return
        big = size > MAX_COMMAND_MESSAGE
        if size > MAX_FOLLOW_MESSAGE or (big and b"follow" not in data.bytes):
            self._reject(ident, key, "?", 0, _too_large(size, "?"))
            return
        if not within_rate and not _looks_like_stop(data, frames):
            self._rate_limited(ident, key, data, big)
            return
        try:
            msg = unpack(data.buffer, limit=MAX_FOLLOW_MESSAGE)
        except WireError as exc:
            self._reject(ident, key, "?", 0, exc)
            return
        raw_id = msg.get("id")
        rid = raw_id if type(raw_id) is int and 0 <= raw_id < 2**64 else 0
        raw_op = msg.get("op")
        op = raw_op if isinstance(raw_op, str) and raw_op in OPS else "?"
        self._current = (key, op, rid)
        if big and op != "follow":
            self._reject(ident, key, op, rid, _too_large(size, op))
            return
        try:
            req = parse_request(msg)
        except WireError as exc:
            self._reject(ident, key, op, rid, exc)
            return
        if not within_rate and req.op != "stop":
            self._rate_limited(ident, key, data, big, 0 if req.op in NO_REPLY_OPS else req.id)
            return
        self._answer(t_recv, ident, req, key, client)

    def _answer(self, t_recv: float, ident: bytes, req: Request, key: str, client: str) -> None:
        """A decoded request within its rate: renew the lease, answer from cache or run it."""
        if self.lease.token is not None and req.lease == self.lease.token and key == self.lease.key:
            self.lease.last_heard = t_recv
            self.control.heard(t_recv)
        if req.op in NO_REPLY_OPS:
            return
        if req.op == "state" and not req.args:
            # the hot read: the control thread packed this tick's state already
            self.router.send_multipart([ident, packed_reply(req.id, self.control.seq, self.control.latest_packed)])
            self.counters["accepted"] += 1
            return
        ck = (client, req.id)
        cached = self.cache.get(client, req.id, t_recv) if req.op not in READ_ONLY_OPS else None
        if cached is not None:
            self.counters["duplicates"] += 1
            self.router.send_multipart([ident, cached])
            self.audit.record(key, req.op, req.id, True, "DUPLICATE", "duplicate answered from cache "
                              "(the command was not executed again)")
            return
        if ck in self._pending:
            self.counters["duplicates"] += 1
            waiting = self._pending[ck]
            if len(waiting) < MAX_WAITING_RETRIES:
                waiting.append(ident)
                self.audit.record(key, req.op, req.id, True, "DUPLICATE", "duplicate of a command still being "
                                  "planned: it gets the first reply (the command is not executed again)")
            else:
                self.counters["dropped"] += 1
                self.audit.record(key, req.op, req.id, False, "DUPLICATE", f"retry dropped: {MAX_WAITING_RETRIES} "
                                  "retries of this id already wait for its first reply")
            return
        waited = time.monotonic() - t_recv
        if waited > req.deadline:
            self._reject(ident, key, req.op, req.id, WireError(
                Code.DEADLINE_EXCEEDED, f"{req.op}: waited {waited * 1000:.1f} ms in the server's queue, "
                f"past its deadline of {req.deadline * 1000:.1f} ms; nothing was done"), client=client)
            return
        try:
            if req.op in LEASED_OPS:
                self._check_lease(req, key)
            if req.op in ("move_joints", "move_pose", "follow") and len(self._pending) >= MAX_PLANS:
                raise WireError(Code.BUSY, f"{req.op}: {len(self._pending)} motion commands are being planned "
                                           f"already (limit {MAX_PLANS}); wait for their replies")
            result = self.ops.dispatch(req, key, t_recv)
        except WireError as exc:
            self._reject(ident, key, req.op, req.id, exc, client=None if req.op in READ_ONLY_OPS else client)
            return
        except RobocellError as exc:
            self._reject(ident, key, req.op, req.id, WireError(ops.code_for(exc), str(exc)),
                         client=None if req.op in READ_ONLY_OPS else client)
            return
        if isinstance(result, ops.Deferred):
            self._pending[ck] = [ident]
            result.on_done(lambda body: self._post(ck, body, req.op, key))
            return
        self._finish(ck, pack(reply(req.id, Code.OK, "", result, self.control.seq)),
                     {"op": req.op, "ok": True, "code": "OK", "ident": ident, "key": key})

    def _rate_limited(self, ident: bytes, key: str, data: zmq.Frame, big: bool, rid: int | None = None) -> None:
        if rid is None and not big:
            # echo the id when it is cheap to read, so the client can match the refusal
            try:
                msg = unpack(data.buffer, limit=MAX_COMMAND_MESSAGE)
                raw = msg.get("id")
                rid = raw if type(raw) is int and 0 <= raw < 2**64 else 0
                if msg.get("op") in NO_REPLY_OPS:
                    self.counters["dropped"] += 1  # a heartbeat gets no reply, not even this one
                    self.counters["rate_limited"] += 1
                    return
            except WireError:
                rid = 0
        elif rid == 0:
            self.counters["dropped"] += 1
            self.counters["rate_limited"] += 1
            return
        self.counters["rate_limited"] += 1
        self._reject(ident, key, self._current[1], rid or 0, WireError(
            Code.RATE_LIMITED, f"this client sent more than {self.rate.rate:.0f} requests per second (a burst of "
            f"{self.rate.burst:.0f}; each KiB counts as one more); nothing was done. Slow down and retry"),
            counted=False)

    def _post(self, ck: tuple[str, int], body: dict[str, Any], op: str, key: str) -> None:
        """From the planner thread: queue a finished reply and wake the command thread."""
        body["seq"] = self.control.seq
        self._results.append((ck, pack(body), {"op": op, "ok": body["ok"], "code": body["code"], "msg": body["msg"],
                                               "key": key}))
        sock = getattr(self._wake_local, "sock", None)
        if sock is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._wake)
            self._wake_local.sock = sock
        sock.send(b"", zmq.NOBLOCK)

    def _finish(self, ck: tuple[str, int], data: bytes, meta: dict[str, Any]) -> None:
        if meta["op"] not in READ_ONLY_OPS:
            self.cache.put(ck[0], ck[1], data, time.monotonic())
            if meta["op"] == "lease_acquire" and meta["ok"]:
                self.cache.protected = ck[0]  # the controller's replies outlive other clients' traffic
        idents = self._pending.pop(ck, None) or [meta["ident"]]
        for ident in idents:
            self.router.send_multipart([ident, data])
        if meta["op"] not in READ_ONLY_OPS or not meta["ok"]:
            self.audit.record(meta["key"], meta["op"], ck[1], meta["ok"], meta["code"], meta.get("msg", ""))
        self.counters["accepted" if meta["ok"] else "rejected"] += 1

    def _reject(self, ident: bytes, key: str, op: str, rid: int, exc: WireError, client: str | None = None,
                counted: bool = True) -> None:
        """Answer an error; ``client`` given: remember the reply for retries (a command's answer)."""
        data = pack(reply(rid, exc.code, exc.message, seq=self.control.seq))
        if client is not None and rid:
            self.cache.put(client, rid, data, time.monotonic())
        self.router.send_multipart([ident, data])
        self.audit.record(key, op, rid, False, exc.code.value, exc.message)
        if counted:
            self.counters["rejected"] += 1

    def _key_of(self, data: zmq.Frame | None) -> str:
        if self.keys is None:
            return "anonymous"
        try:
            return str(data.get("User-Id")) if data is not None else "unknown"
        except zmq.ZMQError:
            return "unknown"

    def _check_lease(self, req: Request, key: str) -> None:
        self.leases.check(req.op, req.lease, key)


def _too_large(size: int, op: str) -> WireError:
    if size > MAX_FOLLOW_MESSAGE:
        return WireError(Code.TOO_LARGE, f"message of {size} bytes exceeds the limit of {MAX_FOLLOW_MESSAGE} bytes "
                                         f"(for follow; {MAX_COMMAND_MESSAGE} for every other request)")
    what = f"'{op}'" if op != "?" else "this request"
    return WireError(Code.TOO_LARGE, f"message of {size} bytes exceeds the limit of {MAX_COMMAND_MESSAGE} bytes for "
                                     f"{what}; only follow may send up to {MAX_FOLLOW_MESSAGE} bytes")


def _looks_like_stop(data: zmq.Frame | None, frames: int) -> bool:
    # cheap pre-scan: a msgpack "op": "stop" pair; misclassifying only changes order (and lets a
    # request past the rate check until it is decoded), never meaning
    return frames == 1 and data is not None and len(data) <= MAX_COMMAND_MESSAGE and b"\xa2op\xa4stop" in data.bytes


def _looks_like_heartbeat(data: zmq.Frame | None, frames: int) -> bool:
    return frames == 1 and data is not None and len(data) <= 256 and b"\xa9heartbeat" in data.bytes

