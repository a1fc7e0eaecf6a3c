"""Grounding a clause to a skill or a named task by sentence-embedding similarity.

Both the clause and every skill's declared phrasings (examples, name, summary)
and every task's phrasings are *abstracted* the same way before embedding: the
thing acted on becomes "it" and the destination becomes its kind ("the bin",
"the block", "the slot", "the pose"). The model then compares what is asked
(the verb and the spatial relation), not which block it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robocell.skills.language import lexicon as lx
from robocell.skills.language.model import LanguageModel
from robocell.skills.language.parse import Clause, ClauseParser, NounPhrase
from robocell.skills.registry import SkillSpec

THRESHOLD = 0.60  # below this cosine similarity nothing is close enough: refuse
SPECIFIC_MARGIN = 0.12  # a more specific signature wins over a better score within this margin

_POLITE = frozenset({"please", "pls", "plz", "kindly", "could", "can", "would", "you", "u", "robot", "now",
                     "just", "ok", "okay", "also", "too", "again", "as", "well", "i", "want", "need", "me"})


def abstract(clause: Clause, kinds: dict[int, str] | None = None, mode: str = "full") -> str:
    """The clause with its noun phrases replaced by their role ('it', 'the bin', 'the block', ...)."""
    out: list[str] = []
    for kind, value in clause.pieces:
        if kind == "w":
            if value not in _POLITE:
                out.append(str(value))
        elif kind == "prep":
            out.append(str(value))
        else:
            assert isinstance(value, NounPhrase)
            word = _np_word(value, clause, kinds)
            if mode == "full" or word in {"the gripper"}:
                out.append(word)
    return " ".join(out) or clause.text


def _np_word(np_: NounPhrase, clause: Clause, kinds: dict[int, str] | None) -> str:
    if np_.device:
        return "the gripper"
    if np_.scenery:
        return f"the {np_.scenery}"
    if np_ is not clause.dest:
        return "it"
    if np_.frame is not None:
        return "the pose"
    if np_.slot is not None:
        return "the slot"
    if np_.fixture is not None:
        return f"the {lx.FIXTURE_WORDS.get(np_.fixture, (kinds or {}).get(id(np_), 'bin'))}"
    return "the block"


@dataclass(frozen=True)
class Candidate:
    """A skill or named task the model can ground a clause to."""

    name: str
    kind: str  # "skill" | "task"
    phrases: tuple[str, ...]
    spec: SkillSpec | None = None


@dataclass(frozen=True)
class Score:
    candidate: Candidate
    score: float
    phrase: str  # the phrasing that matched best


class Grounder:
    """Scores clauses against skills and tasks with one model, for one cell's parser."""

    def __init__(self, model: LanguageModel, parser: ClauseParser, candidates: Sequence[Candidate]) -> None:
        self.model = model
        self.parser = parser
        self.candidates = list(candidates)
        full: list[str] = []
        verb: list[str] = []
        owner: list[int] = []
        for i, c in enumerate(self.candidates):
            for p in c.phrases:
                clauses = parser.parse(p)
                # a phrasing is one clause; a name such as 'pick and place' is taken as it is
                one = len(clauses) == 1
                full.append(abstract(clauses[0]) if one else p.lower())
                verb.append(abstract(clauses[0], mode="verb") if one else p.lower())
                owner.append(i)
        self._phrases = full
        self._owner = np.asarray(owner, dtype=int)
        self._emb = model.embed(full) if full else np.zeros((0, 1), np.float32)
        self._emb_verb = model.embed(verb) if verb else np.zeros((0, 1), np.float32)

    def scores(self, clause: Clause) -> list[Score]:
        """Every candidate's similarity to the clause, best first.

        The score is the mean of two cosine similarities, each the best over the
        candidate's phrasings: the whole abstracted clause ('put it in the bin'),
        and its words without the noun phrases ('put in'), so that neither the
        sentence frame alone nor the verb alone can carry an unrelated request.
        """
        if not self._phrases:
            return []
        text = abstract(clause)
        q = self.model.embed([text, abstract(clause, mode="verb")])
        sims_full = self._emb @ q[0]
        sims_verb = self._emb_verb @ q[1]
        best_full: dict[int, tuple[float, str]] = {}
        best_verb: dict[int, float] = {}
        for k in range(len(self._phrases)):
            i = int(self._owner[k])
            if i not in best_full or sims_full[k] > best_full[i][0]:
                best_full[i] = (float(sims_full[k]), self._phrases[k])
            best_verb[i] = max(best_verb.get(i, -1.0), float(sims_verb[k]))
        ranked = sorted(((i, (f + best_verb[i]) / 2, p) for i, (f, p) in best_full.items()), key=lambda x: -x[1])
        return [Score(self.candidates[i], s, p) for i, s, p in ranked]


def skill_phrases(spec: SkillSpec) -> tuple[str, ...]:
    """How a skill describes itself for grounding: its examples, its name and its summary line."""
    summary = spec.summary.split(":")[0].split("(")[0].rstrip(". ")
    return tuple(dict.fromkeys([*spec.examples, spec.name.replace("_", " "), summary]))
