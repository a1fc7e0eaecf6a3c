"""Append-only audit log: one JSON object per line for every command, accepted or not.

Bounded two ways (docs/protocol.md §9 and §11):

- **rotation**: when the file reaches ``max_bytes`` it is renamed ``FILE.1`` (``FILE.1``
  becomes ``FILE.2``, ... up to ``FILE.<keep>``; the oldest is deleted) and a new ``FILE``
  is started, so the log never holds more than ``(keep + 1) * max_bytes`` bytes;
- **rate-limited lines**: lines of one (client, op, code) beyond a burst of ``burst`` are
  written at most ``rate`` per second; the ones left out are counted, and the next line
  of that kind (or a summary line within a second) carries ``"suppressed": N``.  A client
  that sends garbage as fast as it can costs about one line per second per kind, not
  megabytes.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from robocell.hardware.bounds import AUDIT_BURST, AUDIT_KEEP, AUDIT_LIMITERS, AUDIT_MAX_BYTES, AUDIT_RATE

FLUSH_EVERY = 0.1  # s: servo setpoints (up to 1 kHz) are batched this long; everything else flushes at once
MAX_REASON = 500  # characters of a line's reason


@dataclass
class _Kind:
    """The rate limit of one (client, op, code): a token bucket and what it left out."""

    tokens: float
    last: float  # monotonic s of the last refill
    suppressed: int = 0
    since: float = 0.0  # wall time of the first line left out
    key: str = ""
    op: str = ""
    code: str = ""


class AuditLog:
    """Writes ``{"t", "key", "op", "id", "ok", "code", "reason"}`` lines; opened with O_APPEND."""

    def __init__(self, path: str | Path | None, *, max_bytes: int = AUDIT_MAX_BYTES, keep: int = AUDIT_KEEP,
                 rate: float = AUDIT_RATE, burst: int = AUDIT_BURST) -> None:
        self.path = Path(path) if path is not None else None
        self.max_bytes = max_bytes
        self.keep = keep
        self.rate = rate
        self.burst = burst
        self._file: TextIO | None = None
        self._size = 0
        self._lock = threading.Lock()
        self._last_flush = 0.0
        self._dirty = False
        self._kinds: collections.OrderedDict[tuple[str, str, str], _Kind] = collections.OrderedDict()
        self._held: set[tuple[str, str, str]] = set()  # kinds with lines left out (a summary is due)
        self.written = 0  # lines written (summaries included)
        self.suppressed = 0  # lines left out by the rate limit
        self.rotations = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        assert self.path is not None
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._size = os.fstat(fd).st_size

    def record(self, key: str, op: str, rid: int, ok: bool, code: str, reason: str = "", *,
               kind: tuple[str, str, str] | None = None, **extra: Any) -> None:
        """Write one line, unless its kind (default: (key, op, code)) is over its rate.

        ``kind`` groups lines for the rate limit when the key is the sender's choice (a
        refused CURVE key: every refused key shares one kind).
        """
        if self._file is None:
            return
        now = time.time()
        mono = time.monotonic()
        k = kind or (key, op, code)
        with self._lock:
            state = self._kinds.pop(k, None)
            if state is None:
                state = _Kind(float(self.burst), mono, key=key, op=op, code=code)
            state.tokens = min(float(self.burst), state.tokens + (mono - state.last) * self.rate)
            state.last = mono
            self._kinds[k] = state
            if state.tokens < 1.0:
                if state.suppressed == 0:
                    state.since = now
                    self._held.add(k)
                state.suppressed += 1
                self.suppressed += 1
                self._evict(now)
                return
            state.tokens -= 1.0
            fields: dict[str, Any] = {"t": round(now, 6), "key": key, "op": op, "id": rid, "ok": ok, "code": code,
                                      "reason": reason[:MAX_REASON], **extra}
            if state.suppressed:
                fields["suppressed"] = state.suppressed  # lines of this kind left out before this one
                state.suppressed = 0
                self._held.discard(k)
            self._write(json.dumps(fields, separators=(",", ":")), now,
                        batch=op == "servo" and ok and not fields.get("suppressed"))
            self._evict(now)

    def _summary(self, state: _Kind, now: float) -> None:
        """A line saying how many lines of one kind were left out (lock held)."""
        line = json.dumps({"t": round(now, 6), "key": state.key, "op": state.op, "id": 0, "ok": False,
                           "code": state.code, "suppressed": state.suppressed, "summary": True,
                           "reason": f"{state.suppressed} more line(s) like the previous one since "
                                     f"{state.since:.3f} were not written (audit rate limit: {self.rate:g} "
                                     f"line(s)/s per client, op and code after {self.burst})"},
                          separators=(",", ":"))
        state.suppressed = 0
        self._write(line, now, batch=False)

    def _evict(self, now: float) -> None:
        while len(self._kinds) > AUDIT_LIMITERS:
            k, old = self._kinds.popitem(last=False)
            self._held.discard(k)
            if old.suppressed:
                self._summary(old, now)

    def _write(self, line: str, now: float, batch: bool) -> None:
        assert self._file is not None
        self._file.write(line + "\n")
        self._size += len(line.encode()) + 1
        self.written += 1
        self._dirty = True
        if self._size >= self.max_bytes:
            self._rotate()
        elif not batch or now - self._last_flush > FLUSH_EVERY:
            self._flush(now)

    def _rotate(self) -> None:
        assert self._file is not None and self.path is not None
        self._file.flush()
        self._file.close()
        if self.keep > 0:
            for i in range(self.keep - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self.rotations += 1
        self._open()
        self._last_flush = time.time()
        self._dirty = False

    def _flush(self, now: float) -> None:
        assert self._file is not None
        self._file.flush()
        self._last_flush = now
        self._dirty = False

    def flush_due(self) -> None:
        """Flush batched lines older than FLUSH_EVERY, and write the summaries that are due
        (kinds with lines left out whose bucket has a token again). The server calls this while idle."""
        if self._file is None:
            return
        now = time.time()
        mono = time.monotonic()
        with self._lock:
            if self._file is None:
                return
            for k in list(self._held):
                state = self._kinds[k]
                if state.tokens + (mono - state.last) * self.rate >= 1.0:
                    state.tokens = min(float(self.burst), state.tokens + (mono - state.last) * self.rate) - 1.0
                    state.last = mono
                    self._summary(state, now)
                    self._held.discard(k)
            if self._dirty and now - self._last_flush > FLUSH_EVERY:
                self._flush(now)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                now = time.time()
                for state in self._kinds.values():
                    if state.suppressed:
                        self._summary(state, now)
                if self._file is not None:
                    self._file.flush()
                    self._file.close()
                self._file = None
