"""Who controls the arm, and how the server knows that client is still there (docs/protocol.md §6).

A lease is kept alive one of two ways:

- **liveness connection** (``lease_acquire`` with ``liveness: true``): once the
  client has bound its lease to a :class:`~robocell.hardware.liveness.LivenessChannel`,
  the lease lasts exactly as long as that connection, which libzmq's
  heartbeats watch; application silence does not count (a busy client is
  alive), and neither the watchdog nor ``lease_timeout`` applies;
- **application messages** (raw clients, ``liveness`` absent, or until the
  liveness connection is bound): any request with the token, or a
  ``heartbeat``, resets ``last_heard``; the control loop's watchdog judges
  that silence, and after ``lease_timeout`` of it the lease expires.

:class:`LeaseKeeper` holds the rules.  Acquire, release and :meth:`LeaseKeeper.watch`
run on the control thread (so a lease never changes in the middle of a tick's
watchdog check); :meth:`LeaseKeeper.check` runs on the command thread and only reads.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from robocell.hardware.liveness import LivenessChannel
from robocell.hardware.protocol import Code, WireError


@dataclass
class Lease:
    """Who controls the arm; ``last_heard`` is the application watchdog's clock (monotonic s)."""

    token: str | None = None
    key: str | None = None
    last_heard: float = 0.0
    channel: LivenessChannel | None = None  # the lease's liveness connection, if it asked for one

    @property
    def bound(self) -> bool:
        """True while a liveness connection (and not application messages) keeps this lease."""
        ch = self.channel
        return self.token is not None and ch is not None and ch.bound


@dataclass(frozen=True)
class Lost:
    """The holder is gone (``cause``: ``liveness`` or ``expired``); ``reason`` goes into the latched fault."""

    reason: str
    cause: str
    key: str
    silent: float  # s since the holder's last application message


class LeaseKeeper:
    def __init__(self, lease: Lease, lease_timeout: float, on_event: Callable[[str, str], None],
                 open_channel: Callable[[], LivenessChannel | None] | None = None,
                 liveness_deadline: float = 0.0, liveness_interval: float = 0.0) -> None:
        self.lease = lease
        self.liveness_deadline = liveness_deadline  # s of silence on a liveness connection that stop a moving arm
        self.liveness_interval = liveness_interval  # s between the client's PINGs
        self.lease_timeout = lease_timeout
        self.on_event = on_event  # (kind, text) -> audit
        self.open_channel = open_channel  # None: this server offers no liveness connections

    # ---------------------------------------------------------------- command thread (reads only)
    def held_by_other(self, key: str, t_recv: float, presented: str | None) -> str | None:
        """Why a ``lease_acquire`` from ``key`` must be refused now, or None."""
        lease = self.lease
        token = lease.token
        if token is None or (presented is not None and presented == token and key == lease.key):
            return None
        silent = t_recv - lease.last_heard
        if lease.bound:
            return (f"the control lease is held by {lease.key}, whose liveness connection is up (it ends when "
                    "that client releases the lease or its connection drops)")
        if silent <= self.lease_timeout:
            return (f"the control lease is held by {lease.key} (heard from {silent * 1000:.0f} ms ago; it expires "
                    f"after {self.lease_timeout:.2f} s of silence)")
        return None

    def check(self, op: str, presented: str | None, key: str) -> None:
        """Raise unless the request holds the lease: NO_LEASE when nobody else does, LEASE_HELD when someone does."""
        lease = self.lease
        token, holder = lease.token, lease.key
        if token is not None and presented == token and key == holder:
            return
        if token is None:
            if presented is None:
                raise WireError(Code.NO_LEASE, f"{op} needs the control lease; send lease_acquire first")
            raise WireError(Code.NO_LEASE, f"{op}: this lease token no longer holds the arm (it was released, "
                                           "expired, or its liveness connection dropped) and nobody holds the "
                                           "lease now; send lease_acquire")
        if presented is None:
            raise WireError(Code.NO_LEASE, f"{op} needs the control lease token in field 'lease' "
                                           f"(the lease is held by {holder})")
        if key == holder:
            raise WireError(Code.LEASE_HELD, f"{op}: the control lease is held by this client key under another "
                                             "token (a newer lease_acquire from the same key replaced this one)")
        raise WireError(Code.LEASE_HELD, f"{op}: the control lease is held by another client ({holder}); "
                                         "observers may only read state and stop")

    # ---------------------------------------------------------------- control thread
    def acquire(self, key: str, t_recv: float, presented: str | None,
                liveness: bool) -> tuple[str, LivenessChannel | None]:
        """A new token for ``key`` (and its liveness channel if asked for and offered); LEASE_HELD otherwise.

        Renewing (presenting the current token) keeps a liveness connection that is still bound:
        the client's end stays connected and the lease is never left without one.
        """
        why = self.held_by_other(key, t_recv, presented)
        if why is not None:
            raise WireError(Code.LEASE_HELD, why)
        lease = self.lease
        renewing = presented is not None and presented == lease.token and key == lease.key
        keep = liveness and renewing and lease.bound
        if not keep:
            self._close_channel()
            if liveness and self.open_channel is not None:
                lease.channel = self.open_channel()
        # last_heard first: the watchdog expires a lease whose token it sees with an old time
        lease.last_heard = t_recv
        lease.key = key
        lease.token = secrets.token_hex(16)
        return lease.token, lease.channel

    def release(self) -> None:
        self._end()

    def watch(self, now: float) -> Lost | None:
        """Once per tick: read the liveness channel; end a lease whose holder is certainly gone and say why.

        A closed liveness connection, or a lease kept by application messages that went
        ``lease_timeout`` without one, ends here. A liveness connection that is open but silent is
        judged by the control loop (:meth:`silence`, :meth:`drop_silent`), which knows its own stalls.
        """
        lease = self.lease
        key = lease.key or "?"
        ch = lease.channel
        if ch is not None and lease.token is not None:
            ch.poll(lease.token, lease.key)
            if ch.lost is not None:
                return self._lost_liveness(ch, key, now)
            if ch.bound:
                return None
        silent = now - lease.last_heard
        if lease.token is not None and silent > self.lease_timeout:
            # a silent holder (dead, or cut off) loses control so another client can take over
            self.on_event("lease", f"lease of {key} expired after {silent:.2f} s of silence")
            self._end()
            return Lost(f"watchdog: the lease of the controlling client ({key}) expired after {silent:.2f} s "
                        f"without a command or heartbeat (lease timeout {self.lease_timeout:.2f} s)",
                        "expired", key, silent)
        return None

    def silence(self) -> float | None:
        """Seconds since bytes last arrived on the bound liveness connection (the kernel's clock), or None."""
        ch = self.lease.channel
        return ch.silent if ch is not None and self.lease.bound else None

    def drop_silent(self, now: float, silent: float) -> Lost:
        """The control loop judged the holder silent past its limit (``silent`` s): end the lease."""
        ch = self.lease.channel
        assert ch is not None
        ch.drop_silent(silent)
        return self._lost_liveness(ch, self.lease.key or "?", now, silent)

    def _lost_liveness(self, ch: LivenessChannel, key: str, now: float, silent: float | None = None) -> Lost:
        self.on_event("lease", f"lease of {key} ended: its liveness connection dropped ({ch.lost})")
        if silent is None:
            silent = min(ch.silent if ch.silent is not None else float("inf"), now - self.lease.last_heard)
        self._end()
        return Lost(f"watchdog: the liveness connection of the controlling client ({key}) dropped: {ch.lost}",
                    "liveness", key, silent)

    def close(self) -> None:
        """After the control thread has stopped: close the channel it owned."""
        self._close_channel()

    def _end(self) -> None:
        self.lease.token = None
        self._close_channel()

    def _close_channel(self) -> None:
        ch, self.lease.channel = self.lease.channel, None
        if ch is not None:
            ch.close()
