"""The latched fault list: why the arm is in a protective stop, deduplicated and bounded.

Anyone may send ``stop`` with a ``reason`` (no lease needed), so the list of latched
reasons is an outsider's input: 20,000 stops with distinct reasons once made every state
message 4.6 MB, past every client's limit.  Here a repeated reason is counted, not
repeated, and only the first :data:`~robocell.hardware.bounds.MAX_FAULTS` distinct reasons
are listed; later ones are counted in one overflow entry (the audit log has each one).
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_TEXT = 300  # characters of one fault's text (a stop's reason is already cut shorter)
OVERFLOW = "more distinct faults than the state lists; the audit log has each one"


class LatchedFaults:
    """Distinct fault texts in first-seen order, each with how often it was raised since the last reset."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def add(self, text: str) -> None:
        text = text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."
        if text not in self._counts and len(self._counts) >= self.limit:
            text = OVERFLOW  # the list is full: count it without listing it
        self._counts[text] = self._counts.get(text, 0) + 1

    def clear(self) -> None:
        self._counts = {}

    def texts(self) -> list[str]:
        return list(self._counts)

    def counts(self) -> list[int]:
        return list(self._counts.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._counts))

    def __len__(self) -> int:
        return len(self._counts)

    def __bool__(self) -> bool:
        return bool(self._counts)

    def __contains__(self, text: object) -> bool:
        return text in self._counts
