"""Prompt sets with expected programs, and scoring a Teacher on them (tests and benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robocell.errors import ConfigError, LanguageError, RobocellError
from robocell.skills.program import Program
from robocell.cellfile.yamlio import load_yaml


@dataclass(frozen=True)
class Case:
    prompt: str
    cell: str
    steps: list[dict[str, Any]] | None = None  # expected program (None for a negative case)
    kind: str | None = None  # why a negative case must be refused
    candidates: tuple[str, ...] = ()


@dataclass
class Outcome:
    case: Case
    ok: bool
    got: str
    seconds: float


@dataclass
class Score:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(o.ok for o in self.outcomes) / max(1, len(self.outcomes))

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


def load_cases(path: str | Path) -> list[Case]:
    data = load_yaml(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), list):
        raise ConfigError(f"prompt set {path}: expected a mapping with a 'prompts' list")
    return [Case(prompt=str(e["prompt"]), cell=str(e["cell"]), steps=e.get("steps"), kind=e.get("kind"),
                 candidates=tuple(e.get("candidates", ()))) for e in data["prompts"]]


def canonical(steps: list[Any]) -> list[Any]:
    """Expected steps in Program.to_data() form, for exact comparison."""
    return Program.from_data({"version": 1, "steps": steps}).to_data()["steps"]


def score_cases(teacher: Any, cases: list[Case], cells: dict[str, Path]) -> Score:
    """Exact-program accuracy (positive cases) or refusal rate with the candidates named (negative cases)."""
    from robocell.cellfile.spec import load_cell_spec

    specs = {name: load_cell_spec(p) for name, p in cells.items()}
    result = Score()
    for case in cases:
        t0 = time.perf_counter()
        try:
            program = teacher.program(case.prompt, specs[case.cell])
            got = program.to_data()["steps"]
            dt = time.perf_counter() - t0
            ok = case.steps is not None and got == canonical(case.steps)
            result.outcomes.append(Outcome(case, ok, repr(got), dt))
        except LanguageError as exc:
            dt = time.perf_counter() - t0
            ok = case.steps is None and all(c in str(exc) for c in case.candidates)
            result.outcomes.append(Outcome(case, ok, f"refused: {exc}", dt))
        except RobocellError as exc:  # validation refused it: still a refusal, but not a language one
            dt = time.perf_counter() - t0
            result.outcomes.append(Outcome(case, case.steps is None, f"refused ({type(exc).__name__}): {exc}", dt))
    return result
