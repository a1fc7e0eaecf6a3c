"""The Teacher: an operator's prompt -> a typed Program validated against the cell.

Structure (clauses, noun phrases, references) is parsed by rules; which skill
or named task each clause asks for is decided by the sentence-embedding model.
The output is only ever a :class:`~robocell.skills.Program` (data, never code),
checked by ``Program.validate_for`` before it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robocell.errors import LanguageError
from robocell.skills.language import ground
from robocell.skills.language.ground import Candidate, Grounder, Score, abstract, skill_phrases
from robocell.skills.language.model import LanguageModel, ModelCache
from robocell.skills.language.parse import Clause, ClauseParser, NounPhrase, Vocabulary, tokenize
from robocell.skills.language.resolve import Discourse, Resolver
from robocell.skills.language.tasks import Task, TaskLibrary
from robocell.skills.program import Program, Step
from robocell.skills.registry import SkillRegistry, SkillSpec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from robocell.cellfile.spec import CellSpec

# what a built-in skill does to the gripper's load, for 'it' and for choosing place vs pick_and_place
HOLDS = frozenset({"pick"})
RELEASES = frozenset({"place", "pick_and_place", "stack", "open_gripper"})
MAX_TASK_DEPTH = 4


@dataclass(frozen=True)
class Reading:
    """How one clause was understood: for showing the operator the plan."""

    clause: str
    abstract: str
    chosen: str  # skill or task name
    kind: str  # skill | task
    score: float
    steps: tuple[Step, ...]


@dataclass
class Plan:
    program: Program
    readings: list[Reading] = field(default_factory=list)

    def describe(self) -> str:
        lines = []
        for r in self.readings:
            what = f"task '{r.chosen}'" if r.kind == "task" else r.chosen
            lines.append(f"'{r.clause}' -> {what} (similarity {r.score:.2f})")
            lines += [f"    {s.text()}" for s in r.steps]
        return "\n".join(lines)


class Teacher:
    """Turns prompts into programs for any cell; keep one per process (the model loads once)."""

    def __init__(self, model: LanguageModel | None = None, *, registry: SkillRegistry | None = None,
                 library: TaskLibrary | None = None, model_dir: str | Path | None = None,
                 models: ModelCache | None = None) -> None:
        self.models = models or ModelCache()
        self._model = model
        self._model_dir = model_dir
        self.registry = registry if registry is not None else SkillRegistry.default()
        self.library = library
        self._grounders: dict[tuple[Any, ...], tuple[ClauseParser, Grounder]] = {}

    @property
    def model(self) -> LanguageModel:
        if self._model is None:
            self._model = self.models.get(self._model_dir)
        return self._model

    # ---- public API ------------------------------------------------------------------
    def program(self, prompt: str, cell: CellSpec | str | Path, name: str | None = None) -> Program:
        """The validated Program for ``prompt`` in ``cell``; raises LanguageError rather than guess."""
        return self.understand(prompt, cell, name).program

    def understand(self, prompt: str, cell: CellSpec | str | Path, name: str | None = None) -> Plan:
        spec = _spec(cell)
        plan = self._plan(prompt, spec, depth=0)
        plan.program = Program(name=name, description=prompt.strip(), steps=plan.program.steps)
        plan.program.validate_for(spec, self.registry)
        return plan

    def teach_task(self, name: str, cell: CellSpec | str | Path, definition: str,
                   phrasings: list[str] | tuple[str, ...] = ()) -> tuple[Task, Program]:
        """A named task (not yet saved): its program in ``cell`` and the phrasings that call it."""
        from robocell.skills.language.tasks import check_name

        check_name(name)
        if self.library is not None and name in self.registry:
            raise LanguageError(f"'{name}' is already a skill's name; give the task another name")
        spec = _spec(cell)
        program = self.program(definition, spec, name=name)
        said = [p.strip() for p in (*phrasings, name.replace("_", " ")) if p.strip()]
        task = Task(name=name, definition=definition.strip(), phrasings=list(dict.fromkeys(said)),
                    cell=spec.name, program=program.to_data())
        return task, program

    # ---- internals ---------------------------------------------------------------------
    def _english(self) -> frozenset[str]:
        """Whole words of the model's tokenizer: real words, never 'corrected' as typos."""
        vocab = getattr(self.model, "vocabulary", None)
        return vocab() if callable(vocab) else frozenset()

    def _grounder(self, spec: CellSpec) -> tuple[ClauseParser, Grounder]:
        tasks = self.library.all() if self.library is not None else []
        key = (id(spec), tuple((t.name, t.definition, tuple(t.phrasings)) for t in tasks))
        if key not in self._grounders:
            cands = [Candidate(s.name, "skill", skill_phrases(s), s) for s in self.registry]
            cands += [Candidate(t.name, "task", tuple(t.phrasings) + (t.definition,)) for t in tasks]
            # misspellings are corrected towards what skills and tasks say, not their documentation
            said = [p for s in self.registry for p in s.examples] + [p for t in tasks for p in t.phrasings]
            words = {w for p in said for w in tokenize(p)}
            vocab = Vocabulary.build(
                [o.name for o in spec.objects], {f.name: f.type for f in spec.fixtures},
                [s for f in spec.fixtures if f.slots is not None for s in f.slot_poses()],
                [f.name for f in spec.frames], {o.color_name for o in spec.objects} | _palette(), words)
            parser = ClauseParser(vocab, self._english())
            self._grounders.clear()  # one cell at a time is the common case; bounded memory
            self._grounders[key] = (parser, Grounder(self.model, parser, cands))
        return self._grounders[key]

    def _plan(self, prompt: str, spec: CellSpec, depth: int, ctx: Discourse | None = None) -> Plan:
        if not prompt.strip():
            raise LanguageError("the prompt is empty; say what the robot should do, e.g. "
                                "\"put the red block in the bin, then go home\"")
        if depth > MAX_TASK_DEPTH:
            raise LanguageError(f"named tasks call each other more than {MAX_TASK_DEPTH} deep (a loop?); "
                                "redefine one of them without the other")
        parser, grounder = self._grounder(spec)
        resolver = Resolver(spec)
        ctx = ctx or Discourse()
        clauses = parser.parse(prompt)
        if not clauses:
            raise LanguageError(f"found nothing to do in '{prompt}'; say what the robot should do")
        full: list[Clause] = []
        for clause in clauses:
            full.append(_inherit(clause, full[-1]) if not clause.has_verb() and full else clause)
        # one forward pass for the whole prompt: every clause, whole and verb-only
        self.model.embed([t for c in full for t in (abstract(c), abstract(c, mode="verb"))])
        steps: list[Step] = []
        readings: list[Reading] = []
        for clause in full:
            reading = self._clause(clause, grounder, resolver, ctx, spec, depth)
            readings.append(reading)
            steps += reading.steps
        return Plan(Program(steps=steps), readings)

    def _clause(self, clause: Clause, grounder: Grounder, resolver: Resolver, ctx: Discourse,
                spec: CellSpec, depth: int) -> Reading:
        text = abstract(clause)
        scores = grounder.scores(clause)
        if not scores or scores[0].score < ground.THRESHOLD:
            raise LanguageError(
                f"'{clause.text}' does not match any skill or task closely enough (closest: "
                f"{_best(scores)}; needs {ground.THRESHOLD:.2f}). Known skills: {', '.join(self.registry.names())}"
                + (f"; tasks: {', '.join(self.library.names())}" if self.library and self.library.names() else "")
                + ". Rephrase with one of them, or teach a task with --name/--as"
            )
        # objects and places, against the cell (unknown or ambiguous -> refuse)
        dest: tuple[str, str] | None = None
        themes: list[str] = []
        other_first = any(np_.ref == "other" for np_ in clause.themes)
        if clause.dest is not None and other_first:
            dest = resolver.place_for(clause.dest, ctx, clause.text, [])
        for np_ in clause.themes:
            excl = [dest[0]] if dest and dest[1] == "object" else []
            themes += [o for o in resolver.objects_for(np_, ctx, clause.text, excl) if o not in themes]
        if clause.dest is not None and dest is None:
            dest = resolver.place_for(clause.dest, ctx, clause.text, themes)
        implicit = bool(themes) and themes == [ctx.holding]
        has_theme = bool(themes) and not implicit
        fits = [s for s in scores if _fits(s.candidate, has_theme, dest)]
        good = [s for s in fits if s.score >= ground.THRESHOLD]
        if not good:
            best = scores[0].candidate
            raise LanguageError(_missing(clause, best, has_theme, dest, scores[0].score))
        chosen = _most_specific(good, dest)
        top = scores[0]
        if top.candidate is not chosen.candidate and top.score - chosen.score > 0.15 \
                and _lacks(top.candidate, has_theme or implicit, dest):
            raise LanguageError(_missing(clause, top.candidate, has_theme, dest, top.score))
        cand = chosen.candidate
        if themes:
            ctx.mention(themes)
        if dest is not None and dest[1] == "object":
            ctx.mentioned += [dest[0]] if dest[0] not in ctx.mentioned else []
        if cand.kind == "task":
            task = self.library.get(cand.name) if self.library else None
            assert task is not None
            sub = self._plan(task.definition, spec, depth + 1, Discourse(holding=ctx.holding))
            ctx.holding = _holding_after(sub.program.steps, ctx.holding)
            return Reading(clause.text, text, cand.name, "task", chosen.score, tuple(sub.program.steps))
        assert cand.spec is not None
        steps = _steps(cand.spec, themes if has_theme else [None], dest)
        ctx.holding = _holding_after(steps, ctx.holding)
        return Reading(clause.text, text, cand.name, "skill", chosen.score, tuple(steps))


# ---- helpers ------------------------------------------------------------------------------
def _spec(cell: CellSpec | str | Path) -> CellSpec:
    if isinstance(cell, (str, Path)):
        from robocell.cellfile.spec import load_cell_spec

        return load_cell_spec(cell)
    return cell


def _palette() -> set[str]:
    from robocell.cellfile.types import PALETTE

    return set(PALETTE)


def _inherit(clause: Clause, prev: Clause) -> Clause:
    """An elliptic clause ('... and green in the tray', '..., then the blue one too') reuses the verb before it."""
    verb = [p for p in prev.pieces if p[0] == "w"]
    pieces = list(verb) + list(clause.pieces)
    dest, prep = clause.dest, clause.prep
    if dest is None and prev.dest is not None and clause.themes:
        dest, prep = prev.dest, prev.prep
        pieces += [("prep", prev.prep), ("np", prev.dest)]
    return Clause(words=list(clause.words), verb=[str(v) for _, v in verb] + clause.verb,
                  themes=list(clause.themes), dest=dest, prep=prep, pieces=pieces)


def _roles(spec: SkillSpec) -> tuple[str | None, str | None, str | None]:
    """(theme parameter, destination parameter, destination kind) of a skill's signature."""
    theme = next((p.name for p in spec.params if p.ref == "object"), None)
    dest = next((p for p in spec.params if p.ref in {"object", "target", "frame"} and p.name != theme), None)
    return theme, (dest.name if dest else None), (dest.ref if dest else None)


def _fits(c: Candidate, has_theme: bool, dest: tuple[str, str] | None) -> bool:
    if c.kind == "task":
        return not has_theme and dest is None
    assert c.spec is not None
    theme, dparam, dkind = _roles(c.spec)
    required = {p.name for p in c.spec.params if p.required}
    if has_theme != (theme is not None):
        return False
    if dest is None:
        # a skill that takes a place needs one ('place' with no target cannot run)
        return dparam is None and not any(p.ref == "pose" for p in c.spec.params) and \
            not (required - {theme})
    if dparam is None:
        return False
    return dkind != "object" or dest[1] == "object"


def _lacks(c: Candidate, has_theme: bool, dest: tuple[str, str] | None) -> bool:
    """Whether the prompt leaves out a part this candidate needs (not: says more than it takes)."""
    if c.spec is None:
        return False
    theme, dparam, _ = _roles(c.spec)
    return (theme is not None and not has_theme) or (dparam is not None and dest is None)


def _most_specific(good: list[Score], dest: tuple[str, str] | None) -> Score:
    best = good[0]
    if dest is None or dest[1] != "object":
        return best
    for s in good:
        if s.candidate.spec is not None and _roles(s.candidate.spec)[2] == "object" \
                and best.score - s.score <= ground.SPECIFIC_MARGIN:
            return s
    return best


def _steps(spec: SkillSpec, themes: Sequence[str | None], dest: tuple[str, str] | None) -> list[Step]:
    theme, dparam, _ = _roles(spec)
    out = []
    for obj in themes:
        args: dict[str, Any] = {}
        if theme is not None and obj is not None:
            args[theme] = obj
        if dparam is not None and dest is not None:
            args[dparam] = dest[0]
        out.append(Step(skill=spec.name, args=args))
    return out


def _holding_after(steps: list[Step] | tuple[Step, ...], holding: str | None) -> str | None:
    for s in steps:
        if s.skill in HOLDS:
            holding = s.args.get("object")
        elif s.skill in RELEASES:
            holding = None
    return holding


def _best(scores: list[Score]) -> str:
    if not scores:
        return "nothing"
    shown = [f"{s.candidate.spec.signature() if s.candidate.spec else 'task ' + s.candidate.name} at {s.score:.2f}"
             for s in scores[:3]]
    return ", ".join(shown)


def _missing(clause: Clause, best: Candidate, has_theme: bool, dest: tuple[str, str] | None,
             score: float) -> str:
    if best.kind == "task":
        return (f"'{clause.text}' sounds like task '{best.name}' (similarity {score:.2f}), but a task takes no "
                "object or place; say it on its own")
    assert best.spec is not None
    theme, dparam, dkind = _roles(best.spec)
    parts = []
    if theme is not None and not has_theme:
        parts.append(f"which object ('{theme}')")
    if dparam is not None and dest is None:
        parts.append(f"where to ('{dparam}': a {dkind})")
    if dest is not None and dkind == "object" and dest[1] != "object":
        parts.append(f"'{dparam}' must be an object, not {dest[1]} '{dest[0]}'")
    if theme is None and has_theme or dparam is None and dest is not None:
        parts.append(f"{best.name} takes no object or place")
    detail = "; ".join(parts) or "its parameters do not fit"
    return (f"'{clause.text}' sounds like {best.spec.signature()} (similarity {score:.2f}) but the prompt "
            f"does not fit it: {detail}. Say the missing part, e.g. 'put the red block in the bin'")
