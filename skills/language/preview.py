"""Preview: run a taught program on a fresh simulated cell before it is saved or run on hardware."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robocell.errors import ApprovalRequired, SkillFailed

if TYPE_CHECKING:
    from robocell.skills.program import Program
    from robocell.skills.registry import SkillRegistry


@dataclass(frozen=True)
class PreviewResult:
    success: bool
    steps: int
    failed_step: int | None  # 1-based
    error: str | None
    picture: Path | None  # the final scene, or the scene at the failing step
    wall_time: float

    def to_json(self) -> dict[str, Any]:
        return {"success": self.success, "steps": self.steps, "failed_step": self.failed_step,
                "error": self.error, "picture": str(self.picture) if self.picture else None,
                "wall_time_s": round(self.wall_time, 3)}


def preview(program: Program, cell: str | Path, registry: SkillRegistry, *, seed: int | None = 0,
            picture: str | Path | None = None,
            on_step: Callable[[int, Any, str], None] | None = None) -> PreviewResult:
    """Run ``program`` in simulation (real physics) and report success or the failing step."""
    from robocell.core.cell import Cell
    from robocell.skills.context import SkillContext

    failed: list[int] = []

    def step(i: int, s: Any, status: str) -> None:
        if status == "failed":
            failed.append(i)
        if on_step is not None:
            on_step(i, s, status)

    t0 = time.perf_counter()
    error: str | None = None
    with Cell.load(cell, "sim", seed=seed) as c:
        ctx = SkillContext.create(c, registry=registry)
        try:
            program.run(ctx, step)
        except SkillFailed as exc:
            error = str(exc)
        shot = None
        if picture is not None:
            from robocell.core.images import save_png

            shot = save_png(c.render(), picture)
    return PreviewResult(error is None, len(program.steps), failed[0] if failed else None, error, shot,
                         time.perf_counter() - t0)


def approve(backend: str, result: PreviewResult | None, yes: bool,
            confirm: Callable[[str], bool] | None) -> None:
    """Refuse to run on a remote arm without a passed preview and an explicit approval.

    ``confirm`` asks the operator (None when nobody can answer, e.g. no terminal).
    """
    if backend == "sim":
        return
    if result is None or not result.success:
        why = "it was not previewed" if result is None else f"the preview failed at step {result.failed_step}"
        raise ApprovalRequired(f"refusing to run on {backend}: {why}; fix the program until the simulated "
                               "preview passes")
    if yes:
        return
    if confirm is None:
        raise ApprovalRequired(f"running on {backend} needs an explicit approval: pass --yes, or run in a "
                               "terminal to confirm interactively")
    if not confirm(f"The preview passed. Run this program on the arm at {backend}?"):
        raise ApprovalRequired(f"not approved: nothing was run on {backend}")
