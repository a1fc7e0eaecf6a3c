"""An evaluation run from start to report: plan the trials, pick the engine, collect, write.

    plan = EvalPlan(EvalTarget.parse(["examples/programs/pick_place_red.yaml"]),
                    "examples/cells/tabletop.yaml", trials=100, seed=0, workers=2)
    report = run_plan(plan)          # ScaleReport
    replay_trial(plan, 17, gui=True)  # trial 17 alone, in this process

Trial k always gets seed ``trial_seeds(seed, n)[k]`` (a prefix of the same
sequence for any n), so the set of outcomes is the same on every engine and
with any number of workers, and ``--trial k`` replays exactly trial k.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from robocell.errors import ConfigError
from robocell.eval.report import ScaleReport
from robocell.eval.evaluate import TrialResult, trial_seeds
from robocell.eval.trial import EvalTarget, TrialJob, check_job

if TYPE_CHECKING:
    from robocell.cellfile.randomization import RandomizationSpec

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EvalPlan:
    """What to evaluate and how (everything ``robocell eval`` takes on its command line)."""

    target: EvalTarget
    cell: str
    trials: int = 20
    seed: int = 0
    workers: int = 1
    engine: str = "local"
    address: str | None = None
    timeout: float = 300.0  # s of wall time per trial before its worker is killed
    skill_dirs: tuple[str, ...] = ()
    randomize: tuple[str, ...] = ()  # KEY=VALUE overrides of the cell file's randomization section
    backend: str = "sim"
    report_dir: str | None = None
    animate: int = 3  # failed trials replayed as a GIF for the report
    shard: tuple[int, int] = (0, 1)  # (i, n): run only the trials k with k % n == i (one of n drivers)

    def check(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"--trials {self.trials}: must be at least 1")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise ConfigError(f"--shard {i}/{n}: must be I/N with 0 <= I < N, e.g. 0/4 .. 3/4 for four drivers")
        if i >= self.trials:
            raise ConfigError(f"--shard {i}/{n}: shard {i} has no trials out of --trials {self.trials}")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine {self.engine!r}: must be one of {', '.join(ENGINES)}")
        if self.address and self.engine != "ray":
            raise ConfigError(f"--address {self.address}: only the ray engine joins a cluster; add --engine ray")
        if self.backend != "sim" and (self.workers != 1 or self.engine != "local"):
            raise ConfigError(f"--backend {self.backend}: trials on a remote arm run one at a time; "
                              "use --workers 1 with the local engine")
        from robocell.core.backends import available_backends

        scheme = self.backend.split("://", 1)[0]
        if scheme not in available_backends():
            raise ConfigError(f"--backend {self.backend}: unknown backend; available: "
                              f"{', '.join(sorted(available_backends()))} (tcp://host:port needs the hardware layer)")

    def randomization(self) -> RandomizationSpec | None:
        """The cell file's randomization section with the command-line overrides on top."""
        from robocell.cellfile.spec import load_cell_spec
        from robocell.cellfile.randomization import merge, parse_overrides

        return merge(load_cell_spec(self.cell).randomization, parse_overrides(list(self.randomize)))

    def job(self, trial: int, seed: int, rnd: RandomizationSpec | None) -> TrialJob:
        # replays change picture_dir, record and gui with dataclasses.replace
        return TrialJob(self.target, self.cell, trial, seed, self.skill_dirs, self.backend, rnd,
                        picture_dir=self.report_dir)

    def replay_flags(self) -> tuple[str, ...]:
        flags = [f"--skills {shlex.quote(d)}" for d in self.skill_dirs]
        flags += [f"--randomize {shlex.quote(r)}" for r in self.randomize]
        if self.backend != "sim":
            flags.append(f"--backend {shlex.quote(self.backend)}")
        return tuple(flags)


@runtime_checkable
class EvalEngine(Protocol):
    """What trials run on (``--engine local``: LocalEngine, ``--engine ray``: RayEngine).

    An engine runs every job once and returns one result per job (in any order; a trial
    that crashed or hung is a result with status ``error``, never an exception), calling
    ``on_result`` as each one arrives so that the CLI can show progress.
    """

    def run(self, jobs: Iterable[TrialJob],
            on_result: Callable[[TrialResult], None] | None = None) -> list[TrialResult]: ...


def make_engine(plan: EvalPlan) -> EvalEngine:
    if plan.engine == "ray":
        from robocell.eval.engines.ray import RayEngine

        return RayEngine(plan.workers, plan.timeout, plan.address)
    from robocell.eval.engines.local import LocalEngine

    return LocalEngine(plan.workers, plan.timeout)


def prepare(plan: EvalPlan) -> list[TrialJob]:
    """Check the plan and build its jobs; every mistake is reported here, before any trial runs."""
    plan.check()
    rnd = plan.randomization()
    seeds = trial_seeds(plan.seed, plan.trials)
    i, n = plan.shard
    # a trial's seed depends on its index only, so n drivers with one shard each run exactly the trials one would
    jobs = [plan.job(k, s, rnd) for k, s in enumerate(seeds) if k % n == i]
    check_job(jobs[0])  # a typo fails once, here, not N times in the workers
    make_engine(plan)  # checks workers and timeout
    return jobs


def run_plan(plan: EvalPlan, on_result: Callable[[TrialResult], None] | None = None,
             jobs: list[TrialJob] | None = None) -> ScaleReport:
    """Run every trial of the plan on its engine; write the HTML report when asked."""
    jobs = prepare(plan) if jobs is None else jobs
    rnd = jobs[0].randomization
    engine = make_engine(plan)
    t0 = time.perf_counter()
    results = engine.run(jobs, on_result)
    report = ScaleReport(plan.target, plan.cell, plan.seed, results, plan.engine, plan.workers,
                         time.perf_counter() - t0, plan.replay_flags(),
                         run_replays=rnd is None and plan.backend == "sim", shard=plan.shard)
    if plan.report_dir is not None:
        _animate(plan, report, rnd, engine)
        report.write_html(plan.report_dir)
    return report


def _animate(plan: EvalPlan, report: ScaleReport, rnd: RandomizationSpec | None, engine: EvalEngine) -> None:
    """Replay the first failed trials with a recording: the report shows how they failed.

    Trials are deterministic, so the replay fails the same way; crashed and hung
    trials are not replayed (they would crash or hang again).
    """
    picks = [t for t in report.trials if t.status == "failed"][: max(0, plan.animate)]
    if not picks or plan.report_dir is None:
        return
    gif = {t.trial: str(Path(plan.report_dir) / f"trial-{t.trial:05d}.gif") for t in picks}
    jobs = [replace(plan.job(t.trial, t.seed, rnd), picture_dir=None, record=gif[t.trial]) for t in picks]
    replays = {r.trial: r for r in engine.run(jobs)}
    for i, t in enumerate(report.trials):
        r = replays.get(t.trial)
        if r is not None and r.outcome() == t.outcome() and Path(gif[t.trial]).is_file():
            report.trials[i] = replace(t, picture=gif[t.trial])


def replay_trial(plan: EvalPlan, trial: int, *, gui: bool = False, record: str | None = None,
                 picture_dir: str | None = None) -> TrialResult:
    """Run trial ``trial`` of the plan alone, in this process (with the GUI or a recording if asked)."""
    from robocell.eval.trial import execute

    if trial < 0:
        raise ConfigError(f"--trial {trial}: must be >= 0 (trials are numbered from 0)")
    seed = trial_seeds(plan.seed, trial + 1)[trial]
    job = replace(plan.job(trial, seed, plan.randomization()), picture_dir=picture_dir, record=record, gui=gui)
    check_job(job)
    return execute(job)
