"""Skills: decorated Python functions with a declared, typed interface.

``@skill`` only attaches a :class:`SkillSpec` to the function; nothing global
changes on import.  A :class:`SkillRegistry` collects specs from the built-in
module, from installed packages (entry-point group ``robocell.skills``) and
from a user's project folder, so a team adds skills without editing robocell.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

from robocell.core import plugins
from robocell.errors import SkillError


class RefKind:
    """Marks a ``str`` parameter as the name of something in the cell."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "object" | "target" | "frame"

    def __repr__(self) -> str:
        return f"RefKind({self.kind!r})"


ObjectName = Annotated[str, RefKind("object")]
"""Name of an object in the cell (e.g. ``red_block``)."""
TargetName = Annotated[str, RefKind("target")]
"""Where to put something: an object, a fixture, a tray slot (``tray.slot2``) or a named frame."""
FrameName = Annotated[str, RefKind("frame")]
"""A named frame: world, an arm, object, fixture, tray slot or cell frame."""
Pose = Annotated[list[float], RefKind("pose")]
"""A world pose as ``[x, y, z, roll, pitch, yaw]`` (m, rad)."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of a skill."""

    name: str
    annotation: Any
    default: Any
    required: bool

    @property
    def ref(self) -> str | None:
        """The cell-name kind of this parameter, if it names something in the cell."""
        for arg in _annotated_args(self.annotation):
            if isinstance(arg, RefKind):
                return arg.kind
        return None

    def type_text(self) -> str:
        ref = self.ref
        base = {"object": "object", "target": "target", "frame": "frame", "pose": "pose"}.get(ref or "")
        text = base or _type_name(self.annotation)
        if _is_optional(self.annotation) and base:
            text += " | None"
        return text


@dataclass(frozen=True)
class SkillSpec:
    """A skill's name, parameters and documentation (used for validation and language grounding)."""

    name: str
    func: Callable[..., Any]
    params: tuple[Param, ...]
    doc: str
    examples: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def signature(self) -> str:
        parts = []
        for p in self.params:
            s = f"{p.name}: {p.type_text()}"
            if not p.required:
                s += f" = {p.default!r}"
            parts.append(s)
        return f"{self.name}({', '.join(parts)})"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise SkillError(
            f"skill '{self.name}' has no parameter '{name}'; its parameters are: "
            f"{', '.join(p.name for p in self.params) or '(none)'}"
        )


SKILL_ATTR = "__robocell_skill__"

# The decorated function itself, signature and all: @skill only attaches its spec, so a skill
# function stays callable and type-checked exactly as written.
_SkillFunc = TypeVar("_SkillFunc", bound=Callable[..., Any])


@overload
def skill(func: _SkillFunc, *, name: str | None = ..., examples: Iterable[str] = ...) -> _SkillFunc: ...
@overload
def skill(func: None = ..., *, name: str | None = ...,
          examples: Iterable[str] = ...) -> Callable[[_SkillFunc], _SkillFunc]: ...


def skill(
    func: _SkillFunc | None = None, *, name: str | None = None, examples: Iterable[str] = ()
) -> _SkillFunc | Callable[[_SkillFunc], _SkillFunc]:
    """Declare a function ``f(ctx, **params)`` as a skill (``@skill`` or ``@skill(name=..., examples=...)``).

    The first parameter receives the :class:`~robocell.skills.SkillContext`;
    the others must be annotated and become the skill's typed parameters.
    The function is returned unchanged, so its signature stays the one type checkers see.
    """

    def wrap(fn: _SkillFunc) -> _SkillFunc:
        setattr(fn, SKILL_ATTR, _spec_from_function(fn, name or fn.__name__, tuple(examples)))
        return fn

    return wrap(func) if func is not None else wrap


def _spec_from_function(fn: Callable[..., Any], name: str, examples: tuple[str, ...]) -> SkillSpec:
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    params = list(sig.parameters.values())
    if not params:
        raise SkillError(f"skill '{name}': the first parameter must be the skill context (ctx)")
    out = []
    for p in params[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SkillError(f"skill '{name}': *args/**kwargs are not allowed; declare each parameter")
        if p.name not in hints:
            raise SkillError(f"skill '{name}': parameter '{p.name}' needs a type annotation")
        required = p.default is inspect.Parameter.empty
        out.append(Param(p.name, hints[p.name], None if required else p.default, required))
    return SkillSpec(name=name, func=fn, params=tuple(out), doc=inspect.getdoc(fn) or "", examples=examples)


class SkillRegistry:
    """The set of skills a program or script may call, by name."""

    def __init__(self, specs: Iterable[SkillSpec] = ()) -> None:
        self._skills: dict[str, SkillSpec] = {}
        for s in specs:
            self.add(s)

    @classmethod
    def default(cls, project_dirs: Iterable[str | Path] = ()) -> SkillRegistry:
        """Built-in skills, skills of installed packages, then skills in ``project_dirs``."""
        from robocell.skills import builtin

        reg = cls()
        reg.add_module(builtin)
        for _name, ref in plugins.installed("robocell.skills"):
            reg.add_module(plugins.load(ref))
        for d in project_dirs:
            reg.add_folder(d)
        return reg

    def add(self, spec: SkillSpec, *, replace: bool = False) -> None:
        if spec.name in self._skills and not replace and self._skills[spec.name].func is not spec.func:
            raise SkillError(
                f"two skills are named '{spec.name}' ({_where(self._skills[spec.name].func)} and "
                f"{_where(spec.func)}); rename one of them"
            )
        self._skills[spec.name] = spec

    def add_module(self, module: types.ModuleType) -> int:
        """Register every ``@skill`` function of a module; returns how many."""
        n = 0
        for obj in vars(module).values():
            spec = getattr(obj, SKILL_ATTR, None)
            if isinstance(spec, SkillSpec):
                self.add(spec)
                n += 1
        return n

    def add_folder(self, folder: str | Path) -> int:
        """Register the skills of a project folder: every ``*.py`` module and every learned ``*.skill.json``."""
        folder = Path(folder)
        if not folder.is_dir():
            raise SkillError(f"skills folder '{folder}' does not exist or is not a folder")
        n = 0
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            n += self.add_module(load_module_from_path(path, prefix="robocell_user_skills"))
        learned = sorted(folder.glob("*.skill.json"))
        if learned:
            from robocell.skills.learning import LearnedSkill, skill_spec

            for path in learned:
                self.add(skill_spec(LearnedSkill.load(path)))
                n += 1
        return n

    def get(self, name: str) -> SkillSpec:
        try:
            return self._skills[name]
        except KeyError:
            raise SkillError(
                f"unknown skill '{name}'; available skills: {', '.join(sorted(self._skills))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._skills)

    def __contains__(self, name: object) -> bool:
        return name in self._skills

    def __iter__(self) -> Iterator[SkillSpec]:
        return iter(self._skills[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._skills)


def load_module_from_path(path: Path, prefix: str) -> types.ModuleType:
    """Import a Python file by path under a private module name."""
    mod_name = f"{prefix}.{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SkillError(f"cannot import '{path}' as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and typing need the module registered
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise SkillError(f"importing '{path}' failed: {type(exc).__name__}: {exc}") from exc
    return module


def _where(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _annotated_args(annotation: Any) -> list[Any]:
    found: list[Any] = []
    if typing.get_origin(annotation) is Annotated:
        found.extend(typing.get_args(annotation)[1:])
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is Annotated:
            found.extend(typing.get_args(arg)[1:])
    return found


def _is_optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is Annotated:
        return _type_name(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def spec_from_function(fn: Callable[..., Any], name: str, examples: tuple[str, ...] = ()) -> SkillSpec:
    """The :class:`SkillSpec` that ``@skill`` would give ``fn`` (for skills built at run time, e.g. learned ones).

    ``fn`` is ``f(ctx, **params)`` with annotated parameters, as for :func:`skill`.
    """
    return _spec_from_function(fn, name, examples)
