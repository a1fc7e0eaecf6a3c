"""Sampling a remote arm for recordings: a thread on its own observe-only connection.

ZeroMQ sockets are not thread-safe and the main thread's connection belongs to
whoever moves the arm, so the sampler opens a second :class:`Connection` that
never takes the lease (the server lets any authorised client watch).  It reads
the state stream (up to 1 kHz) and keeps the first state of every period of
the *server's* clock (``t`` in each state message): decimating on the server's
timestamps means a sampler thread that wakes late still keeps a sample for the
period, as long as one state of that period reached it; a period with none is
counted as lost.  The connection queues states rather than conflating them
(``queue_states``): with only the newest state kept, a thread descheduled for
longer than a period (a loaded host, the GIL held by the script) would lose
periods whose states did arrive.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from robocell.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from robocell.hardware.client import Connection
    from robocell.recording.recorder import SampleSink


class RemoteSampler:
    """One sample per ``1/rate`` s of server time, from ``conn``'s state stream (``conn`` is closed by :meth:`close`)."""

    def __init__(self, conn: Connection, rate: float, on_sample: SampleSink) -> None:
        state_rate = float(conn.info["state_rate"])
        if rate > state_rate * (1 + 1e-9):
            conn.close()
            raise ConfigError(f"the arm server at {conn.address} publishes state at {state_rate:g} Hz, so it "
                              f"cannot be recorded at {rate:g} Hz; record at {state_rate:g} Hz or less, or restart "
                              "`robocell serve` with --state-rate 1000")
        self.conn = conn
        self.rate = rate
        self.period = 1.0 / rate
        self.on_sample = on_sample
        self.states = 0  # state messages read
        self.samples = 0  # kept
        self.lost = 0  # periods of server time without any state received
        self.cpu_time = 0.0  # s of CPU the sampler thread used (for benchmarks)
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._run, name="robocell-recorder", daemon=True)
        self._thread.start()
        # the recording starts with a sample: wait for it (an event, not a sleep)
        if not self._first.wait(conn.timeout + 1.0) and self.error is None:
            self.error = BackendError(f"no state from {conn.address} within {conn.timeout:.1f} s")
        if self.error is not None:
            self.close()

    def _run(self) -> None:
        conn, period, sink = self.conn, self.period, self.on_sample
        t0: float | None = None
        last = -1
        cpu0 = time.thread_time()
        try:
            while not self._stop.is_set():
                for s in conn.next_states():  # every state since the last read, oldest first
                    self.states += 1
                    t = float(s["t"])
                    if t0 is None:
                        t0 = t
                    k = int((t - t0) // period)  # the period of server time this state falls in
                    if k <= last:
                        continue
                    if last >= 0:
                        self.lost += k - last - 1
                    last = k
                    g = s["gripper"]
                    sink(t, s["q"], s["tcp"], float(g["width"]), bool(g["grasped"]))
                    self.samples += 1
                    self._first.set()
        except Exception as exc:  # noqa: BLE001 - handed to the recording, which raises it in close()
            self.error = exc
            self._first.set()
        finally:
            self.cpu_time = time.thread_time() - cpu0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.conn.timeout + 1.0)  # next_state returns within one timeout
        if self._thread.is_alive():
            raise BackendError("the recorder thread did not stop; the state stream is stuck")
        self.conn.close()
        if self.error is not None:
            err, self.error = self.error, None
            raise BackendError(f"recording from {self.conn.address} stopped early: {err}") from err
