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


def abstract(clause: Clause, kinds: dict[int, str] | None = None) -> str:
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
            out.append(_np_word(value, clause, kinds))
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
        phrases: list[str] = []
        owner: list[int] = []
        for i, c in enumerate(self.candidates):
            for p in c.phrases:
                for clause in parser.parse(p)[:1]:  # a phrasing is one clause
                    phrases.append(abstract(clause))
                    owner.append(i)
        self._phrases = phrases
        self._owner = np.asarray(owner, dtype=int)
        self._emb = model.embed(phrases) if phrases else np.zeros((0, 1), np.float32)

    def scores(self, text: str) -> list[Score]:
        """Every candidate's best similarity to ``text``, best first."""
        if not self._phrases:
            return []
        sims = self._emb @ self.model.embed([text])[0]
        best: dict[int, tuple[float, str]] = {}
        for k, s in enumerate(sims):
            i = int(self._owner[k])
            if i not in best or s > best[i][0]:
                best[i] = (float(s), self._phrases[k])
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
        return [Score(self.candidates[i], s, p) for i, (s, p) in ranked]


def skill_phrases(spec: SkillSpec) -> tuple[str, ...]:
    """How a skill describes itself for grounding: its examples, its name and its summary line."""
    summary = spec.summary.split(":")[0].split("(")[0].rstrip(". ")
    return tuple(dict.fromkeys([*spec.examples, spec.name.replace("_", " "), summary]))
