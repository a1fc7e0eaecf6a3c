"""Running a program file or a Python skill script against a loaded cell."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robocell.errors import ConfigError

if TYPE_CHECKING:
    from robocell.core.cell import Cell
    from robocell.skills import Program, SkillRegistry, Step
    from robocell.eval.trial import EvalTarget

#: told about each skill call of a script: (skill, args, status), status "start", "done" or "failed"
CallObserver = Callable[[str, dict[str, Any], str], None]


@dataclass(frozen=True)
class RunReport:
    kind: str  # "program" | "script"
    steps: int
    wall_time: float


def load_registry(skill_dirs: Iterable[str | Path] = ()) -> SkillRegistry:
    from robocell.skills import SkillRegistry

    return SkillRegistry.default(skill_dirs)


def load_program(path: str | Path) -> Program:
    from robocell.skills import Program

    return Program.load(path)


def run_file(
    cell: Cell,
    path: str | Path,
    registry: SkillRegistry,
    *,
    arm: str | None = None,
    log: Callable[[str], None] = lambda s: None,
    on_step: Callable[[int, Step, str], None] | None = None,
    on_call: CallObserver | None = None,
) -> RunReport:
    """Run ``PROGRAM.yaml`` or ``SCRIPT.py`` (a script defines ``main(cell)``).

    ``on_step`` hears each step of a program, ``on_call`` each skill call of a script.
    """
    import time

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"'{path}' does not exist; give a program (.yaml) or a script (.py)")
    if path.suffix == ".py":
        from robocell.skills.registry import load_module_from_path

        module = load_module_from_path(path, prefix="robocell_user_scripts")
        main = getattr(module, "main", None)
        if not callable(main):
            raise ConfigError(f"script '{path}' must define a function main(cell)")
        t0 = time.perf_counter()
        calls = [0]

        def count(name: str, args: dict[str, Any], status: str) -> None:
            calls[0] += status == "start"
            if on_call is not None:
                on_call(name, args, status)

        previous, cell.on_skill_call = cell.on_skill_call, count
        try:
            main(cell)
        finally:
            cell.on_skill_call = previous
        return RunReport("script", calls[0], time.perf_counter() - t0)
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"'{path}': expected a program (.yaml/.yml) or a script (.py)")
    return run_program(cell, load_program(path), registry, arm=arm, log=log, on_step=on_step)


def run_program(cell: Cell, program: Program, registry: SkillRegistry, *, arm: str | None = None,
                log: Callable[[str], None] = lambda s: None,
                on_step: Callable[[int, Step, str], None] | None = None) -> RunReport:
    """Validate and run a program on the cell."""
    from robocell.skills import SkillContext

    ctx = SkillContext.create(cell, arm, registry, log)
    result = program.run(ctx, on_step)
    return RunReport("program", result.steps, result.wall_time)


def run_target(cell: Cell, target: EvalTarget, registry: SkillRegistry, *, arm: str | None = None,
               log: Callable[[str], None] = lambda s: None,
               on_step: Callable[[int, Step, str], None] | None = None,
               on_call: CallObserver | None = None) -> RunReport:
    """Run what ``robocell run`` and ``robocell eval`` take: a program, a script or one skill call."""
    program = target.program() if target.kind == "skill" else None
    if program is not None:
        return run_program(cell, program, registry, arm=arm, log=log, on_step=on_step)
    return run_file(cell, str(target.path), registry, arm=arm, log=log, on_step=on_step, on_call=on_call)
