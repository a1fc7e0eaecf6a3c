"""The client side of the wire: requests with deadlines, the latest state, heartbeats.

Rules this module keeps (docs/protocol.md):

- every request carries a fresh id and a deadline, and the call returns or
  raises within that deadline (``ConnectionLost`` when the server is silent);
- the first connection waits for a server that is still starting, within the
  connect deadline (``connect_timeout``): only ``hello``, which changes
  nothing, is repeated while it waits (:mod:`robocell.hardware.connect`);
- a request is never resent: after a timeout the socket is closed with
  ``linger=0`` so nothing queued can reach a server later, and ZMQ_IMMEDIATE
  stops ZeroMQ from queueing messages for a server that is not connected;
- the state stream is conflated (only the newest message is kept), and a
  state older than ``stale`` seconds is never returned as current; a
  connection made with ``queue_states=True`` (the recorder's) keeps every
  state instead, in order, for :meth:`Connection.next_states`;
- while this client holds the lease, a **liveness connection**
  (:mod:`robocell.hardware.liveness`) tells the server it is alive: libzmq's
  I/O threads exchange heartbeats on it, so a client whose Python is busy
  (the GIL, a loaded host) is never taken for dead, and one that is killed,
  frozen or cut off is; its drop is raised here as ``ConnectionLost``.  With
  ``liveness=False`` (or a server that offers none) a heartbeat thread on its
  own socket sends application heartbeats instead, which the server's
  ``--watchdog`` judges.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import secrets
import threading
import time
from typing import Any

import numpy as np
import zmq

from robocell.errors import ConfigError, ConnectionLost, LeaseError, MotionError, ProtocolError
from robocell.hardware.connect import DEFAULT_CONNECT_TIMEOUT, REPLY_MAX_STR, ConnectWatch, say_hello
from robocell.hardware.liveness import HEARTBEAT, LivenessLink, send_heartbeats  # noqa: F401 - HEARTBEAT: as before
from robocell.hardware.protocol import VERSION, WireError, pack, unpack
from robocell.hardware.security import ClientKeys
from robocell.hardware.wireerrors import error_for  # noqa: F401 - importable here as before

MAX_IN_FLIGHT = 64  # streamed commands without a reply yet (a 64 ms backlog at 1 kHz)
STATE_QUEUE = 10_000  # states a queue_states connection holds unread (10 s at 1 kHz)
# After these, state() waits for a state built after the server answered (read-your-writes).
SYNC_OPS = frozenset({"move_joints", "move_pose", "follow", "gripper", "stop", "reset", "lease_acquire",
                      "lease_release", "servo_end"})

class Connection:
    """One client's link to an ArmServer (commands, state, heartbeats)."""

    def __init__(self, address: str, *, keys: ClientKeys | None = None, timeout: float = 2.0,
                 stale: float | None = None, latency: float = 0.0, state_drop: float = 0.0,
                 seed: int | None = None, queue_states: bool = False,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, liveness: bool = True) -> None:
        if not (0.01 <= timeout <= 600):
            raise ConfigError(f"timeout = {timeout} s is outside [0.01, 600] s")
        if not (0.01 <= connect_timeout <= 3600):
            raise ConfigError(f"connect timeout = {connect_timeout} s is outside [0.01, 3600] s; it is how long "
                              "the first connection waits for a server that is still starting")
        if not (0.0 <= latency <= 10.0) or not (0.0 <= state_drop < 1.0):
            raise ConfigError(f"latency = {latency} s must be in [0, 10] and state_drop = {state_drop} in [0, 1)")
        self.address = address
        self.keys = keys
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.latency = latency
        self.state_drop = state_drop
        self._rng = np.random.default_rng(seed)
        self.ctx = zmq.Context()
        self._ids = itertools.count(secrets.randbits(40) << 20)
        self._dealer: zmq.Socket[bytes] | None = None
        self._sub: zmq.Socket[bytes] | None = None
        # the control process's realtime socket (`rt_endpoint` in hello): servo setpoints, heartbeats
        # and stops go there, read by the control loop itself at the start of a tick
        self._rt: zmq.Socket[bytes] | None = None
        self._state_endpoint: str | None = None
        self._state: dict[str, Any] | None = None
        self._state_at = 0.0  # monotonic time the latest state arrived
        self._min_seq = 0  # the oldest state seq that reflects this client's last command
        self._in_flight: dict[int, tuple[str, float]] = {}  # streamed commands awaiting replies
        self._stream_error: Exception | None = None
        self.info: dict[str, Any] = {}
        self.lease: str | None = None
        self._want_lease = False
        self.liveness = liveness  # ask for a liveness connection with the lease (docs/protocol.md §6)
        self._link: LivenessLink | None = None
        self._pollers: tuple[zmq.Socket[bytes], LivenessLink, zmq.Poller] | None = None  # reused by _poll
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        self._closed = False
        self.stale = stale
        # every state in arrival order (queue_states): a reader that wakes late still sees them all
        self.queue_states = queue_states
        self._queued: collections.deque[dict[str, Any]] = collections.deque(maxlen=STATE_QUEUE)
        try:
            self._connect(connect_timeout)  # the server may still be starting: wait for it this long
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- sockets
    def _secure(self, s: zmq.Socket[bytes]) -> None:
        s.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            s.curve_secretkey = self.keys.secret
            s.curve_publickey = self.keys.public
            s.curve_serverkey = self.keys.server_public

    def _connect(self, within: float | None = None) -> None:
        """(Re)open the command socket, say hello, subscribe to state, re-take the lease if held before.

        ``within`` is how long to wait for the server to answer hello (default: the request
        timeout, for reconnects during a program; the first connection uses the connect deadline).
        """
        self._drop_sockets()
        self._min_seq = 0  # a new server counts from the start
        limit = self.timeout if within is None else within
        t_end = time.monotonic() + limit
        d = self.ctx.socket(zmq.DEALER)
        self._secure(d)
        d.setsockopt(zmq.IMMEDIATE, 1)  # never queue a command for a server that is not there
        d.setsockopt(zmq.SNDHWM, 1000)
        watch = ConnectWatch(d)
        try:
            d.connect(self.address)
            self._dealer = d
            self.info = say_hello(d, watch, t_end, limit, self._envelope, address=self.address, timeout=self.timeout,
                                  keys_used=self._keys_used(), secure=self.keys is not None, first=within is not None)
        except BaseException:
            watch.close()
            self._drop_sockets()
            raise
        watch.close()
        if self.info.get("version") != VERSION:
            raise ProtocolError(f"server at {self.address} speaks protocol v{self.info.get('version')}, "
                                f"this client v{VERSION}; upgrade the older side")
        self.state_period = 1.0 / float(self.info["state_rate"])
        if self.stale is None:
            self.stale = max(0.05, 10 * self.state_period)
        if self.info.get("rt_endpoint"):
            rt = self.ctx.socket(zmq.DEALER)
            self._secure(rt)
            rt.setsockopt(zmq.SNDHWM, 1000)
            rt.connect(self.info["rt_endpoint"])
            self._rt = rt
        sub = self.ctx.socket(zmq.SUB)
        self._secure(sub)
        if self.queue_states:
            sub.setsockopt(zmq.RCVHWM, STATE_QUEUE)  # a backlog, read in order by next_states()
        else:
            sub.setsockopt(zmq.CONFLATE, 1)  # latest value wins: never read a backlog of old states
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.info["state_endpoint"])
        self._sub = sub
        self._state = None
        self._queued.clear()
        # the stream works (and CURVE let us in) before we go on
        self.state(max_age=self.stale, within=max(self.timeout, t_end - time.monotonic()))
        if self._want_lease:
            self.acquire()

    def _drop_sockets(self) -> None:
        self._in_flight.clear()
        self._pollers = None
        for s in (self._dealer, self._sub, self._rt):
            if s is not None:
                s.close(linger=0)  # drop anything still queued: a command is never resent
        self._dealer = self._sub = self._rt = None

    def reconnect(self) -> None:
        self._connect()

    def _keys_used(self) -> str:
        if self.keys is None:
            return "no keys: an unencrypted connection"
        where = f" from {self.keys.folder}" if self.keys.folder is not None else ""
        return f"CURVE keys{where}"

    # ---------------------------------------------------------------- requests
    def request(self, op: str, args: dict[str, Any] | None = None, *, deadline: float | None = None) -> dict[str, Any]:
        """Send one command and wait for its reply; raise the mapped error or ConnectionLost."""
        if self._closed:
            raise ConnectionLost(f"connection to {self.address} is closed")
        if self._dealer is None:
            self._connect()
        assert self._dealer is not None
        self._check_link()
        limit = self.timeout if deadline is None else deadline
        rid, data = self._envelope(op, args, limit)
        if self.latency:
            time.sleep(self.latency)  # injected latency (evaluation of remote robustness)
        t_end = time.monotonic() + limit
        # a stop goes to the realtime socket when there is one: it never waits behind other commands
        d = self._rt if op == "stop" and self._rt is not None else self._dealer
        try:
            d.send(data, zmq.NOBLOCK)
        except zmq.Again:
            # not connected (yet): wait for the connection within the deadline, never queue
            if not d.poll(max(0, int((t_end - time.monotonic()) * 1000)), zmq.POLLOUT):
                self._lost(op, limit, "was not connected")
            try:
                d.send(data, zmq.NOBLOCK)
            except zmq.Again:
                self._lost(op, limit, "was not connected")
        while True:
            left = t_end - time.monotonic()
            if left <= 0 or not self._poll(d, left):
                self._lost(op, limit, "did not reply")
            try:
                rep = unpack(d.recv(), max_str=REPLY_MAX_STR)
            except WireError as exc:
                raise ProtocolError(f"the server at {self.address} sent an undecodable reply ({exc.message})") from None
            if rep.get("id") != rid:
                self._collect(rep, d is self._rt)  # a streamed command's reply, or a late one to a timed-out request
                continue
            if op in SYNC_OPS and isinstance(rep.get("seq"), int):
                self._min_seq = max(self._min_seq, rep["seq"] + 1)
            if not rep.get("ok"):
                raise self._error(str(rep.get("code")), str(rep.get("msg")))
            result = rep.get("result", {})
            return result if isinstance(result, dict) else {}

    def _envelope(self, op: str, args: dict[str, Any] | None, deadline: float) -> tuple[int, bytes]:
        """A packed request with a fresh id (and this client's lease token, if it holds one)."""
        rid = next(self._ids)
        msg: dict[str, Any] = {"v": VERSION, "op": op, "id": rid, "deadline": deadline}
        if self.lease is not None:
            msg["lease"] = self.lease
        if args:
            msg["args"] = args
        return rid, pack(msg)

    def send_nowait(self, op: str, args: dict[str, Any] | None = None, *, deadline: float | None = None) -> None:
        """Send a command without waiting for its reply (for streams such as servo).

        Its reply is read later; if the server rejected it, the next call to
        :meth:`send_nowait` or :meth:`flush` raises that error.  Replies are
        bounded: at most ``MAX_IN_FLIGHT`` commands wait for theirs.
        """
        self.raise_stream_error()
        self._check_link()
        if self._dealer is None:
            self._connect()
        assert self._dealer is not None
        if op == "servo" and self._rt is not None:
            # no reply when accepted (the state's servo_seq says it was applied); a refusal comes back
            # on the realtime socket and raises on a later call, as for the command socket
            _, data = self._envelope(op, args, self.timeout if deadline is None else deadline)
            try:
                self._rt.send(data, zmq.NOBLOCK)
            except zmq.Again:
                self._lost(op, self.timeout, "was not connected (realtime socket)")
            self._read_rt()
            return
        while len(self._in_flight) >= MAX_IN_FLIGHT:
            self._read_replies(block=True)
        rid, data = self._envelope(op, args, self.timeout if deadline is None else deadline)
        try:
            self._dealer.send(data, zmq.NOBLOCK)
        except zmq.Again:
            self._lost(op, self.timeout, "was not connected")
        self._in_flight[rid] = (op, time.monotonic())
        self._read_replies(block=False)

    def flush(self) -> None:
        """Wait for the replies of every streamed command; raise the first rejection.

        Setpoints sent to the realtime socket have no reply when accepted: only the refusals
        that arrived so far are seen here.
        """
        while self._in_flight:
            self._read_replies(block=True)
        self._read_rt()
        self.raise_stream_error()

    def _read_rt(self) -> None:
        rt = self._rt
        while rt is not None and rt.poll(0, zmq.POLLIN):
            try:
                self._collect(unpack(rt.recv(), max_str=REPLY_MAX_STR), True)
            except WireError as exc:
                raise ProtocolError(f"the server at {self.address} sent an undecodable reply ({exc.message})") from None

    def raise_stream_error(self) -> None:
        if self._stream_error is not None:
            err, self._stream_error = self._stream_error, None
            raise err

    def _read_replies(self, block: bool) -> None:
        assert self._dealer is not None
        d = self._dealer
        if block:
            oldest = min(t for _, t in self._in_flight.values())
            left = oldest + self.timeout - time.monotonic()
            if left <= 0 or not self._poll(d, left):
                op = next(iter(self._in_flight.values()))[0]
                self._in_flight.clear()
                self._lost(op, self.timeout, "did not reply")
        while d.poll(0, zmq.POLLIN):
            try:
                self._collect(unpack(d.recv(), max_str=REPLY_MAX_STR))
            except WireError as exc:
                raise ProtocolError(f"the server at {self.address} sent an undecodable reply ({exc.message})") from None

    def _collect(self, rep: dict[str, Any], realtime: bool = False) -> None:
        entry = self._in_flight.pop(rep.get("id"), None)  # type: ignore[arg-type]
        if realtime and entry is None:
            entry = ("servo", 0.0)  # the realtime socket answers only refusals (and stops, matched by id)
        if entry is not None and not rep.get("ok") and self._stream_error is None:
            self._stream_error = self._error(str(rep.get("code")), f"{entry[0]}: {rep.get('msg')}")

    def _error(self, code: str, message: str) -> Exception:
        if code == "STOPPED":
            # the wire says "send reset"; a person needs the command that sends it
            message += f"; once you know why it stopped, clear the stop with: {self.reset_command()}"
        return error_for(code, message)

    def reset_command(self) -> str:
        """The shell command that clears this server's latched protective stop."""
        keys = ""
        if self.keys is not None:
            keys = f" --keys {self.keys.folder}" if self.keys.folder is not None else " --keys KEYS_DIR"
        return f"robocell reset --backend {self.address}{keys}"

    def _lost(self, op: str, limit: float, why: str) -> None:
        """``why`` completes "the arm server at ADDRESS ...": "did not reply", "was not connected"."""
        self._drop_sockets()
        raise ConnectionLost(
            f"'{op}': the arm server at {self.address} {why} within the command's deadline of {limit:.3f} s; "
            "the command was not resent. Check that `robocell serve` is running and reachable; "
            "the next call reconnects"
        )

    # ---------------------------------------------------------------- state
    def state(self, max_age: float | None = None, *, within: float | None = None) -> dict[str, Any]:
        """The newest state, at most ``max_age`` s old (default: ``stale``), waited for up to ``within`` s
        (default: the request timeout)."""
        if self._sub is None:
            self._connect()
        assert self._sub is not None and self.stale is not None
        max_age = self.stale if max_age is None else max_age
        self._check_link()
        self._drain()
        if self._current(max_age):
            assert self._state is not None
            return self._state
        wait = self.timeout if within is None else within
        t_end = time.monotonic() + wait
        while time.monotonic() < t_end:
            if self._poll(self._sub, t_end - time.monotonic()):
                self._drain()
                if self._current(max_age):
                    assert self._state is not None
                    return self._state
        self._drop_sockets()
        raise ConnectionLost(f"no state from the arm server at {self.address} for {wait:.2f} s "
                             "(the stream is stale); check the server and the network; the next call reconnects")

    def _current(self, max_age: float) -> bool:
        s = self._state
        return s is not None and time.monotonic() - self._state_at <= max_age and s["seq"] >= self._min_seq

    def next_state(self) -> dict[str, Any]:
        """Wait for a state newer than the one last returned (paces polling loops)."""
        seq = self._state["seq"] if self._state is not None else -1
        t_end = time.monotonic() + self.timeout
        while True:
            s = self.state()
            if s["seq"] != seq:
                return s
            assert self._sub is not None
            left = t_end - time.monotonic()
            if left <= 0:
                self._drop_sockets()
                raise ConnectionLost(f"the state stream from {self.address} stopped advancing for "
                                     f"{self.timeout:.2f} s; the next call reconnects")
            self._sub.poll(max(1, int(min(left, 2 * self.state_period) * 1000)), zmq.POLLIN)

    def next_states(self) -> list[dict[str, Any]]:
        """Every state received since the last call, oldest first; waits for one if there is none.

        Needs ``queue_states=True``: a conflated stream keeps only the newest state, so a
        reader descheduled for a few state periods would never see the ones in between.
        """
        if not self.queue_states:
            raise ConfigError("next_states() needs a connection made with queue_states=True")
        if not self._queued:
            self.next_state()  # a new state (drained into the queue), or ConnectionLost
        out = list(self._queued)
        self._queued.clear()
        return out

    def _drain(self) -> None:
        assert self._sub is not None
        while True:
            try:
                raw = self._sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if self.state_drop and self._rng.random() < self.state_drop:
                continue  # injected loss
            try:
                msg = unpack(raw)
            except WireError:
                continue  # a corrupt state message: keep the previous (staleness still applies)
            if msg.get("v") != VERSION or not isinstance(msg.get("seq"), int):
                continue  # not a state we understand; keep the previous one
            self._state = msg
            self._state_at = time.monotonic()
            if self.queue_states:
                self._queued.append(msg)

    # ---------------------------------------------------------------- lease and heartbeat
    def acquire(self) -> None:
        """Take the lease (renewing it: the current token is presented), with a liveness connection if offered."""
        self._want_lease = True
        args = {"liveness": True} if self.liveness else None
        # a renewal may replace the liveness connection: while it is asked for, a drop of the old
        # one is the server's doing, not a lost lease
        link, self._link = self._link, None
        try:
            result = self.request("lease_acquire", args)
        except BaseException:
            if link is not None:
                link.close()
            self.lease = None
            raise
        self.lease = str(result["token"])
        offer = result.get("liveness")
        if link is not None and (offer is None or link.port != int(offer["port"]) or link.check() is not None):
            link.close()
            link = None
        self._link = link
        if offer is not None and link is None:
            try:
                self._link = LivenessLink(self._secure, self.address, offer, self.lease, self.timeout,
                                          self._heartbeat_now)
            except BaseException:
                self._give_back()
                raise
        if self._link is None and self._hb_thread is None:
            # no liveness connection (liveness=False, or an ipc:// server): application heartbeats
            self._hb_thread = threading.Thread(target=self._heartbeat, name="robocell-heartbeat", daemon=True)
            self._hb_thread.start()

    def _heartbeat_now(self) -> None:
        """One application heartbeat on the command socket: it keeps a lease whose liveness connection is not
        bound yet."""
        if self._dealer is not None and self.lease is not None:
            with contextlib.suppress(zmq.Again):  # not connected at this instant: the next one may be
                self._dealer.send(pack({"v": VERSION, "op": "heartbeat", "lease": self.lease}), zmq.NOBLOCK)

    def _give_back(self) -> None:
        """Release a lease whose liveness connection could not be opened (it would expire anyway)."""
        try:
            # if the server is gone too, its lease expires on its own: nothing to undo
            with contextlib.suppress(ConnectionLost):
                self.request("lease_release", deadline=min(self.timeout, 0.5))
        finally:
            self.lease = None

    def release(self) -> dict[str, Any]:
        """Give the lease back; ``servo_ended`` in the result says whether that ended a servo stream.

        Refused (MotionError, server code BUSY) while a trajectory runs: wait for it or stop it first.
        """
        self._want_lease = False
        link, self._link = self._link, None  # the server closes its end as it releases: not a lost lease
        if self.lease is None:
            if link is not None:
                link.close()
            return {}
        try:
            result = self.request("lease_release", deadline=min(self.timeout, 0.5))
        except MotionError:
            self._link, self._want_lease = link, True  # refused: the lease and its connection are still ours
            raise
        except BaseException:
            self.lease = None
            if link is not None:
                link.close()
            raise
        self.lease = None
        if link is not None:
            link.close()
        return result

    @property
    def liveness_link(self) -> LivenessLink | None:
        """The lease's liveness connection (None without one)."""
        return self._link

    def _close_link(self) -> None:
        link, self._link = self._link, None
        self._pollers = None
        if link is not None:
            link.close()

    def _check_link(self) -> None:
        """Raise ConnectionLost once the liveness connection (and with it the lease) is gone."""
        link = self._link
        if link is None:
            return
        why = link.check()
        if why is None:
            return
        self._close_link()
        self.lease = None
        self._drop_sockets()  # the next call reconnects: hello, fresh state, a new lease
        raise ConnectionLost(f"{why}; the next call reconnects and takes the lease again")

    def _poll(self, sock: zmq.Socket[bytes], seconds: float) -> bool:
        """Wait up to ``seconds`` for ``sock`` to be readable; a liveness drop meanwhile raises at once."""
        ms = max(1, int(seconds * 1000) + 1)
        link = self._link
        if link is None:
            return bool(sock.poll(ms, zmq.POLLIN))
        cached = self._pollers
        if cached is None or cached[0] is not sock or cached[1] is not link:
            poller = zmq.Poller()
            poller.register(sock, zmq.POLLIN)
            poller.register(link.monitor, zmq.POLLIN)
            cached = self._pollers = (sock, link, poller)
        ready = dict(cached[2].poll(ms))
        if link.monitor in ready:
            self._check_link()
        return sock in ready

    def _heartbeat(self) -> None:
        # the realtime socket when offered: the control process's watchdog reads it itself
        send_heartbeats(self.ctx, self._secure, self.info.get("rt_endpoint") or self.address, self._hb_stop,
                        lambda: self.lease if self._link is None else None)  # a liveness connection keeps it

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self.lease is not None and self._dealer is not None:
                # if the server is gone, its lease expires on its own: nothing to undo
                with contextlib.suppress(ConnectionLost):
                    self._release_on_close()
        finally:
            self._closed = True
            self._hb_stop.set()
            if self._hb_thread is not None:
                self._hb_thread.join(timeout=1.0)
            self._close_link()
            self._drop_sockets()
            self.ctx.term()

    def _release_on_close(self) -> None:
        try:
            self.release()
        except LeaseError:
            # the lease is gone already (expired, or ended with its liveness connection): nothing to give back
            self.lease = None
        except MotionError:
            # a trajectory is still running (the server refuses to release it): a client that goes
            # away mid-motion stops it, and says so, rather than leaving it to the watchdog
            self.request("stop", {"reason": "the controlling client closed its connection during a motion"})
            self.release()
