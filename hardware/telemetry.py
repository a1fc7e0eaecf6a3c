"""The server's telemetry: how its control loop, watchdog and queues did over the last window.

About once a second (:data:`TELEMETRY_PERIOD`) one state message of the state
stream carries an extra field ``telemetry`` (docs/protocol.md §5b): tick
period percentiles, late ticks, the watchdog margin, the lease holder, queue
depths, message counters, uptime and the control thread's scheduling.

The work is split so that the control loop pays only a few list appends and
comparisons per tick:

- :class:`TickWindow` (control thread) accumulates one window's tick intervals,
  late ticks, watchdog margin and inbox depth;
- :class:`Traffic` (command thread) notes which connections sent requests and
  the longest command queue;
- :class:`TelemetryThread` (its own thread) turns a finished window into the
  telemetry map, percentiles included, packs it, and hands the bytes back to
  the control thread, which splices them into the next published state
  (:func:`with_field`): only the control thread may use the PUB socket.

Riding the state stream (rather than a topic of its own) keeps every existing
subscriber working: they subscribe to everything and read states by field
name, and an extra field changes nothing for them.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from robocell.hardware.protocol import pack
from robocell.hardware.sched import scheduling

if TYPE_CHECKING:
    from robocell.hardware.server import ArmServer

TELEMETRY_PERIOD = 1.0  # s of control-loop time per telemetry window
MAX_SAMPLES = 20_000  # tick intervals kept per window (20 kHz for 1 s); max and counts stay exact beyond
PEERS_CAP = 4096  # distinct connections counted per window; more is reported as "at least"
WINDOWS_KEPT = 4  # finished windows waiting for the telemetry thread (older ones are dropped)
FIELD = "telemetry"  # the state field that carries it
MARKER: bytes = msgpack.packb(FIELD)  # its packed key: a cheap test before decoding a state message


@dataclass
class TickWindow:
    """One window of control ticks, filled by the control thread (a few operations per tick)."""

    t0: float  # monotonic s of the tick that opened the window (the clock of the states' ``t``)
    t1: float = 0.0  # monotonic s of the tick that closed it (and opened the next)
    ticks: int = 0
    late: int = 0  # intervals longer than two control periods
    longest: float = 0.0  # s, exact even beyond MAX_SAMPLES
    intervals: list[float] = field(default_factory=list)
    margin: float | None = None  # s: least time left before the watchdog deadline, while a lease was held
    inbox_max: int = 0  # most calls waiting for the control thread at the start of a tick

    def add(self, interval: float, late: bool, margin: float | None, inbox: int) -> None:
        self.ticks += 1
        if len(self.intervals) < MAX_SAMPLES:
            self.intervals.append(interval)
        if interval > self.longest:
            self.longest = interval
        if late:
            self.late += 1
        if margin is not None and (self.margin is None or margin < self.margin):
            self.margin = margin
        if inbox > self.inbox_max:
            self.inbox_max = inbox


class Traffic:
    """Requests seen by the command thread in the current window (connections, batch sizes)."""

    def __init__(self) -> None:
        self._peers: set[bytes] = set()
        self._batch_max = 0

    def heard(self, ident: bytes, waiting: int) -> None:
        """A request from connection ``ident`` queued behind ``waiting`` others (command thread)."""
        if waiting > self._batch_max:
            self._batch_max = waiting
        if len(self._peers) < PEERS_CAP:  # bounded: a flood of connections counts as "at least PEERS_CAP"
            self._peers.add(ident)

    def take(self) -> tuple[int, bool, int]:
        """(connections heard from, whether the count hit the cap, largest batch), and a new window.

        Called from the telemetry thread: swapping the references (atomic under the GIL) means
        the command thread's next ``note`` fills the new window; only sizes are read from the old
        one, never its contents, so a late addition to it cannot break anything.
        """
        peers, self._peers = self._peers, set()
        batch_max, self._batch_max = self._batch_max, 0
        return len(peers), len(peers) >= PEERS_CAP, batch_max


def tick_summary(w: TickWindow) -> dict[str, Any]:
    """The window's tick statistics (percentiles computed here, off the control thread)."""
    iv = np.asarray(w.intervals, dtype=float)
    return {
        "window": w.t1 - w.t0, "window_start": w.t0, "window_end": w.t1, "ticks": w.ticks, "late_ticks": w.late,
        "tick_p50": float(np.percentile(iv, 50)) if iv.size else None,
        "tick_p99": float(np.percentile(iv, 99)) if iv.size else None,
        "tick_max": w.longest if w.ticks else None,
        "watchdog_margin": w.margin,
    }


def with_field(packed_map: bytes, n_keys: int, key: str, packed_value: bytes) -> bytes:
    """``pack({**m, key: value})`` from ``pack(m)`` (a map of ``n_keys`` keys, without ``key``)
    and ``pack(value)``, without packing ``m`` again: only the map header changes."""
    head = 1 if n_keys < 16 else 3 if n_keys < 1 << 16 else 5
    n = n_keys + 1
    new_head = bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big") if n < 1 << 16 \
        else b"\xdf" + n.to_bytes(4, "big")
    packed_key: bytes = msgpack.packb(key)
    return new_head + packed_map[head:] + packed_key + packed_value


class TelemetryThread:
    """Builds each finished window's telemetry and hands it to the control thread to publish."""

    def __init__(self, server: ArmServer, clock: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.clock = clock
        self.started = clock()
        self.published = 0  # telemetry maps handed to the control thread
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.started = self.clock()
        self._thread = threading.Thread(target=self._run, name="robocell-telemetry", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.server.control.window_ready.set()  # wake it
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        control = self.server.control
        try:
            while not self._stop.is_set():
                # a control loop that stopped ticking closes no window: then there is nothing to say
                if not control.window_ready.wait(timeout=4 * control.telemetry_period):
                    continue
                control.window_ready.clear()
                latest: TickWindow | None = None
                while control.windows:
                    latest = control.windows.popleft()  # a late thread reports the newest window only
                if latest is None or self._stop.is_set():
                    continue
                data = pack(self.build(latest))
                control.attach_telemetry(data)
                self.published += 1
        except Exception as exc:  # noqa: BLE001 - telemetry is optional: say so and let the arm run on
            self.failure = exc
            print(f"robocell serve: telemetry stopped after an error: {exc!r}", file=sys.stderr)

    def build(self, w: TickWindow) -> dict[str, Any]:
        s, c = self.server, self.server.control
        lease = s.lease
        holder = lease.key if lease.token is not None else None
        heard = lease.last_heard
        now = self.clock()  # after reading last_heard: the holder's silence is never negative
        peers, capped, batch_max = s.traffic.take()
        counters = s.counters
        depths = s.queue_depths()
        out = {
            "n": self.published + 1, "uptime": now - self.started,
            "control_period": c.period, **tick_summary(w), "late_ticks_total": c.stats.late_ticks,
            "watchdog": c.watchdog, "watchdog_stops": len(c.stats.watchdog),
            "lease": holder, "lease_silent": (now - heard) if holder is not None else None,
            "peers": peers, "peers_capped": capped,
            "queues": {"control_inbox": w.inbox_max, "planner": depths["planner"], "results": depths["results"],
                       "command_queue": batch_max, "command_queue_limit": depths["command_queue_limit"]},
            "messages": {k: int(counters.get(k, 0)) for k in ("accepted", "rejected", "duplicates")},
            "scheduling": scheduling(c.native_id),
        }
        return out

