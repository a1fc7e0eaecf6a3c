"""One evaluation trial, described by a picklable job and run by any engine.

A :class:`TrialJob` holds only plain data (paths, names, numbers), so the
local process pool and Ray ship the same object; :func:`execute` turns it
into a :class:`~robocell.eval.evaluate.TrialResult` and never raises for a
failing trial.  Trial k's outcome depends on its seed alone: a fresh cell,
fresh randomisation draws, no state carried over from earlier trials.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robocell.core.capabilities import Renders, sim_time
from robocell.errors import BackendError, ConfigError, RemoteError, RobocellError
from robocell.eval.evaluate import TrialResult

if TYPE_CHECKING:
    from robocell.core.cell import Cell
    from robocell.cellfile.randomization import RandomizationSpec
    from robocell.skills import Program, SkillRegistry

PROGRAM_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class EvalTarget:
    """What a trial runs: a program file, a script, or one skill call.

    On the command line: ``PROGRAM.yaml``, ``SCRIPT.py``, or a skill name
    followed by ``key=value`` arguments (``pick_and_place object=red_block target=bin``).
    """

    kind: str  # "program" | "script" | "skill"
    path: str | None = None
    skill: str | None = None
    args: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, words: list[str]) -> EvalTarget:
        import yaml

        if not words:
            raise ConfigError("give a program (.yaml), a script (.py) or a skill name with key=value arguments")
        first, rest = words[0], words[1:]
        if first.endswith(PROGRAM_SUFFIXES + (".py",)) or "/" in first:
            if rest:
                raise ConfigError(f"unexpected arguments after {first}: {' '.join(rest)}; "
                                  "key=value arguments only follow a skill name")
            if not Path(first).is_file():
                raise ConfigError(f"'{first}' does not exist; give a program (.yaml), a script (.py) "
                                  "or a skill name with key=value arguments")
            return cls("script" if first.endswith(".py") else "program", path=first)
        args: list[tuple[str, Any]] = []
        for w in rest:
            key, sep, text = w.partition("=")
            if not sep or not key.isidentifier():
                raise ConfigError(f"skill argument {w!r}: write name=value, e.g. object=red_block")
            try:
                value = yaml.safe_load(text) if text else ""
            except yaml.YAMLError:
                value = text
            args.append((key, value))
        return cls("skill", skill=first, args=tuple(args))

    def words(self) -> list[str]:
        """The command-line form, for replay commands."""
        import shlex

        if self.kind == "skill":
            return [str(self.skill)] + [shlex.quote(f"{k}={_yaml_scalar(v)}") for k, v in self.args]
        return [shlex.quote(str(self.path))]

    def text(self) -> str:
        return " ".join(self.words())

    def program(self) -> Program | None:
        """The program to run (None for a script)."""
        from robocell.skills import Program
        from robocell.skills.program import Step

        if self.kind == "program":
            return Program.load(str(self.path))
        if self.kind == "skill":
            return Program(name=str(self.skill), steps=[Step(skill=str(self.skill), args=dict(self.args))])
        return None


def _yaml_scalar(v: Any) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to run trial ``trial`` (plain, picklable data)."""

    target: EvalTarget
    cell: str
    trial: int
    seed: int
    skill_dirs: tuple[str, ...] = ()
    backend: str = "sim"
    randomization: RandomizationSpec | None = None
    picture_dir: str | None = None  # write a PNG of a failed trial's scene here
    record: str | None = None  # write a GIF of the whole trial here
    gui: bool = False

    def absolute(self) -> TrialJob:
        """The job with absolute paths: a worker may run in another folder, or on another node."""
        import os

        t = self.target
        target = replace(t, path=os.path.abspath(t.path)) if t.path else t
        return replace(self, target=target, cell=os.path.abspath(self.cell),
                       skill_dirs=tuple(os.path.abspath(d) for d in self.skill_dirs),
                       picture_dir=os.path.abspath(self.picture_dir) if self.picture_dir else None,
                       record=os.path.abspath(self.record) if self.record else None)


def check_engine_options(workers: int, timeout: float) -> None:
    """The options every evaluation engine takes: at least one worker, a positive per-trial timeout."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1")
    if not timeout > 0:
        raise ConfigError(f"--timeout {timeout}: must be > 0 s")


def check_job(job: TrialJob) -> None:
    """Fail fast, once, in the caller: a typo must not fail N trials one by one."""
    from robocell.cellfile.spec import load_cell_spec
    from robocell.run.runner import load_registry

    spec = load_cell_spec(job.cell)
    registry = load_registry(job.skill_dirs)
    program = job.target.program()
    if program is not None:
        program.validate_for(spec, registry)
    from robocell.cellfile.randomization import object_problems
    from robocell.cellfile.errors import format_problems

    bad = object_problems(job.randomization, [o.name for o in spec.objects])
    if bad:
        raise ConfigError("--randomize is invalid:\n  " + "\n  ".join(format_problems(bad)))


def execute(job: TrialJob) -> TrialResult:
    """Run one trial; failures, and unexpected exceptions, are results, never raised."""
    t0 = time.perf_counter()
    step: list[str | None] = [None]
    cell: Cell | None = None
    result = TrialResult(job.trial, job.seed, False, None, 0.0, 0.0)
    sim0 = 0.0
    try:
        cell, conditions = _load(job)
        result = replace(result, conditions=conditions)
        sim0 = sim_time(cell.backend)
        _run(job, cell, step)
        result = replace(result, success=True)
    except RobocellError as exc:
        # a backend that cannot start or a link that fails is the rig's fault, not the task's
        infra = isinstance(exc, BackendError | RemoteError)
        result = replace(result, error=_without_step(_first_line(exc), step[0]), error_type=type(exc).__name__,
                         step=step[0], is_error=infra)
    except Exception as exc:  # a bug in a skill or in robocell: report it, keep the run going
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = replace(result, error=f"{type(exc).__name__}: {_first_line(exc)} "
                                       f"({Path(where.filename).name}:{where.lineno})",
                         error_type=type(exc).__name__, step=step[0], is_error=True)
    if cell is not None:
        result = replace(result, sim_time=sim_time(cell.backend) - sim0)
        try:
            if not result.success:
                result = replace(result, picture=_picture(job, cell))
        finally:
            cell.close()
    return replace(result, wall_time=time.perf_counter() - t0)


def _load(job: TrialJob) -> tuple[Cell, dict[str, object] | None]:
    from robocell.core.backends import create_backend
    from robocell.core.cell import Cell
    from robocell.cellfile.spec import load_cell_spec
    from robocell.cellfile.randomization import backend_options, draw, physical_spec, place_fixtures
    from robocell.eval.noise import with_noise

    spec = load_cell_spec(job.cell)
    if job.backend == "sim":
        # moved fixtures are surveyed: physics and the program both get the drawn poses
        # (a real cell's fixtures stand where they stand: no draw on hardware)
        spec = place_fixtures(spec, job.seed)
    rnd = job.randomization if job.randomization is not None else spec.randomization
    cond = draw(rnd, spec, job.seed)
    options: dict[str, Any] = {}
    if job.backend == "sim":
        options = {"seed": job.seed, "gui": job.gui, "realtime": job.gui, "record": job.record}
    options |= backend_options(job.backend, cond)
    backend = create_backend(physical_spec(spec, cond), job.backend, **options)
    # the program sees the nominal objects (sizes, masses): physics differ from what it believes
    cell = Cell(spec, with_noise(backend, cond), job.backend)
    return cell, (cond.summary() if rnd is not None else None)


def _run(job: TrialJob, cell: Cell, step: list[str | None]) -> None:
    from robocell.run.runner import load_registry, run_file
    from robocell.skills import SkillContext

    registry: SkillRegistry = load_registry(job.skill_dirs)
    program = job.target.program()
    if program is None:
        step[0] = "script"
        run_file(cell, str(job.target.path), registry)
        return

    def on_step(i: int, s: Any, status: str) -> None:
        if status == "start":
            step[0] = f"{i} {s.text()}"

    program.run(SkillContext.create(cell, None, registry), on_step)


def _picture(job: TrialJob, cell: Cell) -> str | None:
    """A PNG of the scene as the failure left it (only for failures, only when asked)."""
    if job.picture_dir is None or not isinstance(cell.backend, Renders):
        return None
    from robocell.core.images import save_png

    path = Path(job.picture_dir) / f"trial-{job.trial:05d}.png"
    try:
        save_png(cell.render(), path)
    except RobocellError as exc:  # e.g. a cell without cameras: the report says so instead
        return f"(no picture: {_first_line(exc)})"
    return str(path)


def _without_step(message: str, step: str | None) -> str:
    """The error without the program's "step N call failed: " prefix: the result names the step already,
    and every report (console, JSON, JUnit, HTML) shows it beside the error."""
    prefix = f"step {step} failed: "
    return message[len(prefix):] if step and message.startswith(prefix) else message


def _first_line(exc: BaseException) -> str:
    """The message on one line (reports and JUnit show one line per trial)."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines())
    return text or type(exc).__name__


