"""Programs: typed lists of skill steps that can be validated, saved, loaded and run.

YAML form (each step is a skill name, or a one-key mapping of skill name to arguments)::

    version: 1
    name: clear_table
    steps:
      - pick_and_place: {object: red_block, target: bin}
      - home
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from robocell.errors import ProgramError, SkillError, SkillFailed
from robocell.cellfile.yamlio import dump_yaml, load_yaml
from robocell.skills.binding import CellNames, bind
from robocell.skills.registry import SkillRegistry

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec
    from robocell.skills.context import SkillContext


class Step(BaseModel):
    """One call of a skill with its arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    skill: str
    args: dict[str, Any] = Field(default_factory=dict)

    def text(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.skill}({inner})"


class Program(BaseModel):
    """A named, ordered list of steps."""

    model_config = ConfigDict(extra="forbid")
    version: int = 1
    name: str | None = None
    description: str | None = None
    steps: list[Step]

    # ---- YAML --------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Program:
        path = Path(path)
        if not path.is_file():
            raise ProgramError(f"program file '{path}' does not exist")
        return cls.from_yaml(path.read_text(), source=str(path))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<program>") -> Program:
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ProgramError(f"program {source}: YAML syntax error{where}: {getattr(exc, 'problem', exc)}") from None
        return cls.from_data(data, source)

    @classmethod
    def from_data(cls, data: Any, source: str = "<program>") -> Program:
        if not isinstance(data, dict):
            raise ProgramError(f"program {source}: expected a mapping with 'version' and 'steps', got {type(data).__name__}")
        extra = set(data) - {"version", "name", "description", "steps"}
        if extra:
            raise ProgramError(
                f"program {source}: unknown field(s) {', '.join(sorted(extra))}; allowed: version, name, description, steps"
            )
        if data.get("version", 1) != 1:
            raise ProgramError(f"program {source}: version = {data.get('version')!r} is not supported; use 1")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise ProgramError(f"program {source}: 'steps' must be a non-empty list of skill calls")
        steps = [_step_from_yaml(s, i, source) for i, s in enumerate(raw_steps)]
        try:
            return cls(version=1, name=data.get("name"), description=data.get("description"), steps=steps)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise ProgramError(f"program {source}: {loc}: {err['msg']}") from None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": self.version}
        if self.name:
            data["name"] = self.name
        if self.description:
            data["description"] = self.description
        data["steps"] = [s.skill if not s.args else {s.skill: dict(s.args)} for s in self.steps]
        return data

    def to_yaml(self) -> str:
        return dump_yaml(self.to_data())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path

    # ---- checking and running ----------------------------------------------------------
    def validate_for(self, cell: CellSpec, registry: SkillRegistry) -> list[dict[str, Any]]:
        """Check every step against the skills' signatures and the cell before anything moves.

        Returns the bound arguments of each step; raises ProgramError listing every problem.
        """
        names = CellNames.from_spec(cell)
        problems: list[str] = []
        bound: list[dict[str, Any]] = []
        for i, step in enumerate(self.steps, 1):
            try:
                spec = registry.get(step.skill)
                bound.append(bind(spec, step.args, names))
            except SkillError as exc:
                problems.append(f"step {i} ({step.skill}): {exc}")
        if problems:
            title = f"program '{self.name}'" if self.name else "the program"
            raise ProgramError(f"{title} does not fit cell '{cell.name}':\n  " + "\n  ".join(problems))
        return bound

    def run(self, ctx: SkillContext, on_step: Callable[[int, Step, str], None] | None = None) -> ProgramResult:
        """Validate, then run every step in order; stops at the first failing step."""
        bound = self.validate_for(ctx.cell.spec, ctx.registry)
        t_start = time.perf_counter()
        durations: list[float] = []
        for i, (step, args) in enumerate(zip(self.steps, bound), 1):
            if on_step:
                on_step(i, step, "start")
            t0 = time.perf_counter()
            try:
                ctx.registry.get(step.skill).func(ctx, **args)
            except SkillFailed as exc:
                if on_step:
                    on_step(i, step, "failed")
                raise SkillFailed(f"step {i} {step.text()} failed: {exc}") from exc
            durations.append(time.perf_counter() - t0)
            if on_step:
                on_step(i, step, "done")
        return ProgramResult(steps=len(self.steps), durations=durations, wall_time=time.perf_counter() - t_start)


@dataclass(frozen=True)
class ProgramResult:
    steps: int
    durations: list[float]  # wall-clock seconds per step
    wall_time: float


def _step_from_yaml(raw: Any, index: int, source: str) -> Step:
    where = f"program {source}: steps[{index}]"
    if isinstance(raw, str):
        return Step(skill=raw)
    if isinstance(raw, dict) and len(raw) == 1:
        (skill_name, args), = raw.items()
        if args is None:
            args = {}
        if not isinstance(skill_name, str) or not isinstance(args, dict):
            raise ProgramError(f"{where}: write a step as 'skill_name' or {{skill_name: {{param: value}}}}, got {raw!r}")
        return Step(skill=skill_name, args=args)
    raise ProgramError(f"{where}: write a step as 'skill_name' or {{skill_name: {{param: value}}}}, got {raw!r}")
