"""A line per skill call while ``robocell run`` works: step i/n, the call, its outcome and its time.

    step 1/3: pick_and_place(object='red_block', target='bin') ... ok (4.21 s)
    step 2/3: home() ... failed (0.30 s)

A program's number of steps is known beforehand; a script's is not, so a
script's calls read ``step 1: pick(object='green_block') ... ok (2.10 s)``.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape


class StepPrinter:
    """Prints progress for a program (:meth:`program_step`) or a script (:meth:`skill_call`)."""

    def __init__(self, console: Console, total: int | None = None) -> None:
        self.console = console
        self.total = total
        self.calls = 0
        self._t0 = 0.0

    def program_step(self, i: int, step: Any, status: str) -> None:
        self._show(i, step.text(), status)

    def skill_call(self, name: str, args: dict[str, Any], status: str) -> None:
        if status == "start":
            self.calls += 1
        inner = ", ".join(f"{k}={_value(v)}" for k, v in args.items())
        self._show(self.calls, f"{name}({inner})", status)

    def _show(self, i: int, text: str, status: str) -> None:
        if status == "start":
            self._t0 = time.perf_counter()
            of = f"/{self.total}" if self.total is not None else ""
            self.console.print(f"step {i}{of}: {escape(text)} ...", end=" ")
            return
        took = time.perf_counter() - self._t0
        mark = "[green]ok[/]" if status == "done" else "[red]failed[/]"
        self.console.print(f"{mark} ({took:.2f} s)")


def _value(v: Any) -> str:
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, str | int | float):
        return repr(v)
    t = getattr(v, "t", None)  # a pose (SE3): its position is what identifies it on one line
    if t is not None and getattr(t, "shape", None) == (3,):
        return "(" + ", ".join(f"{c:.3f}" for c in t) + ") m"
    return repr(v)


__all__ = ["StepPrinter"]
