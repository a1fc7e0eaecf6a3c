"""What a ``robocell doctor`` check returns (a verdict, a summary, advice, its figures) and how figures read."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REQUEST_TIMEOUT = 2.0  # s per request


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass
class Check:
    name: str
    status: Status
    summary: str
    advice: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "summary": self.summary, "advice": self.advice,
                "data": self.data}


@dataclass
class Report:
    backend: str
    checks: list[Check] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(c.status is status for c in self.checks)

    def exit_code(self, strict: bool = False) -> int:
        """1 when a check failed (or, ``strict``, warned); 0 otherwise."""
        return 1 if self.count(Status.FAIL) or (strict and self.count(Status.WARN)) else 0

    def as_dict(self, strict: bool = False) -> dict[str, Any]:
        return {"backend": self.backend, "checks": [c.as_dict() for c in self.checks],
                "exit_code": self.exit_code(strict)}


def percentiles(x: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(x, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.2f} ms"


def spread(p: dict[str, float]) -> str:
    return f"p50 {ms(p['p50'])}, p99 {ms(p['p99'])}, max {ms(p['max'])}"
