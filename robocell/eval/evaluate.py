"""Randomised evaluation: seeds, trial results and one stand-alone trial (the engines run many: robocell.eval.run).

Trial k runs on a fresh simulated cell randomised with its own seed, derived
from the run's seed; ``robocell run PROGRAM --cell CELL --seed <trial seed>``
replays exactly that trial.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robocell.core.capabilities import sim_time
from robocell.errors import RobocellError


def trial_seeds(seed: int, trials: int) -> list[int]:
    """Independent per-trial seeds; the same (seed, trials) always gives the same list."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(trials, dtype=np.uint32)]


@dataclass(frozen=True)
class TrialResult:
    trial: int
    seed: int
    success: bool
    error: str | None
    sim_time: float  # s simulated
    wall_time: float  # s
    # added for evaluation at scale; defaults keep the six-field form working
    step: str | None = None  # the step that failed, e.g. "2 place(target='bin')"
    error_type: str | None = None  # exception class, or WorkerCrashed / TrialTimeout
    is_error: bool = False  # crash, hang or unexpected exception: not a task failure
    picture: str | None = None  # PNG (or GIF) of the failed trial's scene
    conditions: dict[str, object] | None = None  # physics and link draws of randomisation

    @property
    def status(self) -> str:
        """``ok``, ``failed`` (the task failed) or ``error`` (crash, hang, bug)."""
        return "ok" if self.success else ("error" if self.is_error else "failed")

    def outcome(self) -> tuple[int, int, bool, str | None]:
        """What must not depend on engine or worker count: (trial, seed, success, error)."""
        return (self.trial, self.seed, self.success, self.error)


def run_trial(cell_path: str | Path, program_path: str | Path, seed: int, trial: int = 0,
              skill_dirs: Iterable[str | Path] = ()) -> TrialResult:
    """One trial on a fresh cell randomised with ``seed``; failures are results, not exceptions."""
    from robocell.core.cell import Cell
    from robocell.run.runner import load_registry, run_file

    t0 = time.perf_counter()
    registry = load_registry(skill_dirs)
    cell = Cell.load(cell_path, seed=seed)
    sim_t0 = sim_time(cell.backend)
    try:
        run_file(cell, program_path, registry)
        return TrialResult(trial, seed, True, None, sim_time(cell.backend) - sim_t0, time.perf_counter() - t0)
    except RobocellError as exc:
        return TrialResult(trial, seed, False, str(exc).splitlines()[0], sim_time(cell.backend) - sim_t0,
                           time.perf_counter() - t0)
    finally:
        cell.close()
