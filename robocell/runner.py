"""Running a program file or a Python skill script against a loaded cell."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from robocell.errors import ConfigError

if TYPE_CHECKING:
    from robocell.cell import Cell
    from robocell.skills import Program, SkillRegistry, Step


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
) -> RunReport:
    """Run ``PROGRAM.yaml`` or ``SCRIPT.py`` (a script defines ``main(cell)``)."""
    import time

    from robocell.skills import SkillContext

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
        main(cell)
        return RunReport("script", 0, time.perf_counter() - t0)
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"'{path}': expected a program (.yaml/.yml) or a script (.py)")
    program = load_program(path)
    ctx = SkillContext.create(cell, arm, registry, log)
    result = program.run(ctx, on_step)
    return RunReport("program", result.steps, result.wall_time)
