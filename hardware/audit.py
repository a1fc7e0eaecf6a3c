"""Append-only audit log: one JSON object per line for every command, accepted or not."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, TextIO

FLUSH_EVERY = 0.1  # s: servo setpoints (up to 1 kHz) are batched this long; everything else flushes at once


class AuditLog:
    """Writes ``{"t", "key", "op", "id", "ok", "code", "reason"}`` lines; opened with O_APPEND."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._file: TextIO | None = None
        self._lock = threading.Lock()
        self._last_flush = 0.0
        self._dirty = False
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            self._file = os.fdopen(fd, "a", encoding="utf-8")

    def record(self, key: str, op: str, rid: int, ok: bool, code: str, reason: str = "", **extra: Any) -> None:
        if self._file is None:
            return
        now = time.time()
        line = json.dumps({"t": round(now, 6), "key": key, "op": op, "id": rid, "ok": ok, "code": code,
                           "reason": reason[:500], **extra}, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._dirty = True
            if op != "servo" or not ok or now - self._last_flush > FLUSH_EVERY:
                self._flush(now)

    def _flush(self, now: float) -> None:
        assert self._file is not None
        self._file.flush()
        self._last_flush = now
        self._dirty = False

    def flush_due(self) -> None:
        """Flush batched lines older than FLUSH_EVERY (the server calls this while idle)."""
        if self._dirty and self._file is not None and time.time() - self._last_flush > FLUSH_EVERY:
            with self._lock:
                if self._file is not None:
                    self._flush(time.time())

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                self._file.close()
                self._file = None
