"""What the control loop measures about its own timing: tick intervals, late ticks, watchdog stops.

The loop records (:class:`ControlStats`, :class:`StallLog`) on its own thread; ``stats``
and the telemetry read the figures, and the watchdog asks :meth:`StallLog.stalled` how long
the loop itself was not running, so that a stall of the server is not counted as the
watchdog's reaction time.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

TICK_HISTORY = 20_000  # tick intervals kept for the jitter statistics


@dataclass
class WatchdogEvent:
    silent: float  # s between the holder's last message (or, liveness: bytes on its connection) and the stop
    at: float  # monotonic time of the stop command (CLOCK_MONOTONIC: comparable across processes on one host)
    key: str
    stalled: float = 0.0  # s between the deadline and the stop during which the control loop could not run
    cause: str = "heartbeat"  # heartbeat (application silence), liveness (connection dropped), expired (lease)


@dataclass
class ControlStats:
    ticks: int = 0
    late_ticks: int = 0  # ticks that started more than one period after the previous one
    intervals: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=TICK_HISTORY))
    watchdog: list[WatchdogEvent] = field(default_factory=list)
    # longest kernel-measured silence of a bound liveness connection while the arm moved for its holder (s):
    # the margin a live client left against the liveness deadline
    liveness_silence_max: float = 0.0


class StallLog:
    """The latest late ticks, as (tick time, overrun s): the control loop's own pauses."""

    def __init__(self) -> None:
        self._stalls: collections.deque[tuple[float, float]] = collections.deque(maxlen=256)  # (tick, overrun s)

    def add(self, tick: float, overrun: float) -> None:
        """A tick at monotonic time ``tick`` that came ``overrun`` s later than one period."""
        self._stalls.append((tick, overrun))

    def stalled(self, t0: float, t1: float, at_least: float = 0.0) -> float:
        """Seconds of [t0, t1] during which the control loop was not running (late ticks' overruns
        of ``at_least`` s or more).

        A watchdog stop should come within a tick of the deadline (plus STALL_GRACE after a
        stall); the part of the delay the server itself spent descheduled (a loaded host) is
        not the watchdog's reaction time.
        """
        return sum(max(0.0, min(tick, t1) - max(tick - overrun, t0)) for tick, overrun in self._stalls
                   if overrun >= at_least)
