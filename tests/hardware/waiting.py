"""Waiting on the server's state in tests: a condition, with a deadline, never a sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(read: Callable[[], dict[str, Any]], cond: Callable[[dict[str, Any]], Any], timeout: float,
          what: str) -> dict[str, Any]:
    """The first state from ``read()`` for which ``cond`` holds; AssertionError after ``timeout`` s."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        s = read()
        if cond(s):
            return s
    raise AssertionError(f"{what} not seen within {timeout} s")
