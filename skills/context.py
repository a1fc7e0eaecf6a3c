"""SkillContext: what a running skill may use (the cell, one arm and its gripper)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from robocell.errors import KinematicsError, MotionError, SafetyViolation, SkillFailed
from robocell.skills.binding import CellNames, bind
from robocell.skills.registry import SkillRegistry

if TYPE_CHECKING:
    from robocell.core.arm import Arm, Gripper
    from robocell.core.cell import Cell


def _quiet(message: str) -> None:
    """Default logger: skills report progress, callers decide whether to show it."""


@dataclass
class SkillContext:
    """Passed as the first argument to every skill."""

    cell: Cell
    arm: Arm
    gripper: Gripper
    home: np.ndarray
    registry: SkillRegistry
    log: Callable[[str], None] = _quiet
    holding: str | None = None  # the object this arm picked and has not yet placed
    names: CellNames = field(init=False)
    depth: int = field(init=False, default=0)  # skill calls under way through this context (nested ones too)

    def __post_init__(self) -> None:
        self.names = CellNames.from_spec(self.cell.spec)

    @classmethod
    def create(cls, cell: Cell, arm: str | None = None, registry: SkillRegistry | None = None,
               log: Callable[[str], None] = _quiet) -> SkillContext:
        a = cell.arm(arm)
        home = np.asarray(cell.spec.arm(a.name).arm_model().home, dtype=float)
        return cls(cell=cell, arm=a, gripper=cell.gripper(a.name), home=home,
                   registry=registry if registry is not None else SkillRegistry.default(), log=log)

    def move(self, motion: Callable[[], object], doing: str) -> None:
        """Run a motion; kinematic, tracking and safety failures become SkillFailed naming the step."""
        try:
            motion()
        except (KinematicsError, MotionError, SafetyViolation) as exc:
            raise SkillFailed(f"{doing} failed: {exc}") from exc

    def call(self, name: str, **kwargs: Any) -> Any:
        """Run a skill by name after checking its arguments against its signature and the cell."""
        spec = self.registry.get(name)
        args = bind(spec, kwargs, self.names)
        # only the calls a script makes are reported, not the skills a skill calls in turn
        observer = self.cell.on_skill_call if self.depth == 0 else None
        if observer is not None:
            observer(name, kwargs, "start")
        self.depth += 1
        try:
            result = spec.func(self, **args)
        except BaseException:
            if observer is not None:
                observer(name, kwargs, "failed")
            raise
        finally:
            self.depth -= 1
        if observer is not None:
            observer(name, kwargs, "done")
        return result


class Skills:
    """Skills as methods, for scripts: ``s = Skills(cell); s.pick("red_block")``."""

    def __init__(self, cell: Cell, arm: str | None = None, registry: SkillRegistry | None = None,
                 log: Callable[[str], None] = _quiet) -> None:
        self.ctx = SkillContext.create(cell, arm, registry, log)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        spec = self.ctx.registry.get(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            names = [p.name for p in spec.params]
            if len(args) > len(names):
                from robocell.errors import SkillError

                raise SkillError(f"{spec.signature()} takes at most {len(names)} positional arguments")
            kwargs.update(zip(names, args))
            return self.ctx.call(name, **kwargs)

        call.__doc__ = spec.doc
        call.__name__ = name
        return call

    def __dir__(self) -> list[str]:
        return self.ctx.registry.names()
