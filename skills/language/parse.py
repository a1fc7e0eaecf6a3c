"""Rule-based structure of an operator's prompt: clauses, noun phrases, prepositions.

Nothing here decides *which skill* a clause asks for (the embedding model does
that, see :mod:`robocell.skills.language.ground`); this module only finds the
clause boundaries, the things mentioned (colours, shapes, names, quantifiers,
references, slots, frames) and where things should go (spatial prepositions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from robocell.skills.language import lexicon as lx

_TOKEN = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*|'s|[.,;!?]")


@dataclass
class NounPhrase:
    """A mention of something in the cell (or of something the cell does not have)."""

    text: str
    quantifier: str | None = None  # all | every | each | both
    colours: tuple[str, ...] = ()
    noun: str | None = None  # singular shape noun (block, can, one, ...)
    plural: bool = False
    name: str | None = None  # an exact name from the cell file
    pronoun: str | None = None  # it | them
    ref: str | None = None  # same | other
    fixture: str | None = None  # fixture type word or fixture name
    slot: int | None = None
    frame: str | None = None
    device: bool = False  # the gripper / hand
    scenery: str | None = None  # the table: never a target
    reflexive: bool = False
    unknown: str | None = None  # words after a determiner that name nothing known

    @property
    def is_place(self) -> bool:
        return self.fixture is not None or self.slot is not None or self.frame is not None


@dataclass
class Clause:
    """One step of what the operator asked, before grounding."""

    words: list[str] = field(default_factory=list)  # every token, for messages
    verb: list[str] = field(default_factory=list)  # tokens outside noun phrases and prepositions
    themes: list[NounPhrase] = field(default_factory=list)  # what is acted on (coordinated)
    dest: NounPhrase | None = None
    prep: str | None = None
    # the clause in order: ("w", word) | ("prep", words) | ("np", NounPhrase)
    pieces: list[tuple[str, object]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def has_verb(self) -> bool:
        return any(w not in lx.FILLERS and w not in lx.SCENERY for w in self.verb)


@dataclass(frozen=True)
class Vocabulary:
    """The words the parser knows for one cell: closed-class words, cell names, skill words."""

    objects: tuple[str, ...]
    fixtures: dict[str, str]  # name -> type
    slots: tuple[str, ...]
    frames: tuple[str, ...]
    colours: frozenset[str]
    content: frozenset[str]  # words a misspelling may be corrected to

    @classmethod
    def build(cls, objects: Iterable[str], fixtures: dict[str, str], slots: Iterable[str],
              frames: Iterable[str], colours: Iterable[str], extra_words: Iterable[str]) -> Vocabulary:
        objects, slots, frames = tuple(objects), tuple(slots), tuple(frames)
        colours = frozenset(colours) | frozenset(lx.COLOUR_ALIASES)
        content = set(colours) | set(lx.SHAPE_NOUNS) | set(lx.PLURAL_NOUNS) | set(lx.FIXTURE_WORDS)
        content |= set(lx.SLOT_WORDS) | set(lx.NUMBERS) | set(lx.QUANTIFIERS) | set(lx.FRAME_NOUNS)
        content |= {"gripper", "home", "other", "same", "top", "into", "onto", "inside"}
        for name in objects + tuple(fixtures) + frames:
            content |= set(name.split("_"))
        content |= {w for w in extra_words if len(w) >= 4 and w.isalpha()}
        return cls(objects, dict(fixtures), slots, frames, colours, frozenset(content))

    def known(self, word: str) -> bool:
        return (word in self.content or word in lx.FILLERS or word in lx.DETERMINERS or word in lx.SCENERY
                or word in self.objects or word in self.fixtures or word in self.slots or word in self.frames)

    def correct(self, word: str, english: frozenset[str] = frozenset()) -> str:
        """A misspelt word corrected to a known one one edit away ('pcik', 'blok', 'teh', 'bni').

        Real English words (whole words of the model's tokenizer vocabulary) are never
        changed: 'hold' stays 'hold' even though 'held' is a known word.
        """
        if len(word) < 3 or not word.isalpha() or self.known(word) or word in english:
            return word
        pool = self.content | lx.DETERMINERS
        near = sorted(w for w in pool if _one_edit(word, w, transpose_only=len(word) < 4))
        return near[0] if len(near) == 1 else word

    def correct_noun(self, word: str) -> str:
        """A word in a noun's place, corrected against the names of things (even if it is English: 'trey')."""
        if len(word) < 4 or not word.isalpha() or self.known(word):
            return word
        local = ({t for n in self.objects + tuple(self.fixtures) for t in n.split("_")} | set(lx.SHAPE_NOUNS)
                 | set(lx.PLURAL_NOUNS) | set(lx.FIXTURE_WORDS))
        # the names in this cell first ('gren' -> green, not grey), then every colour
        for pool in (local, local | set(self.colours)):
            near = sorted(w for w in pool if _one_edit(word, w))
            if len(near) == 1:
                return near[0]
            if near:
                break
        return word


def _one_edit(a: str, b: str, transpose_only: bool = False) -> bool:
    """Whether a and b differ by one substitution, insertion, deletion or adjacent swap."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
            return True
        return not transpose_only and len(diff) == 1
    if transpose_only or abs(len(a) - len(b)) != 1:
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def tokenize(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    return _TOKEN.findall(text)


def apply_corrections(tokens: list[str]) -> list[str]:
    """'the blue can, I mean the yellow can' -> 'the yellow can': drop the phrase taken back."""
    out = list(tokens)
    for marker in lx.CORRECTIONS:
        n = len(marker)
        i = 0
        while i <= len(out) - n:
            if tuple(out[i:i + n]) == marker and (n > 1 or (i > 0 and out[i - 1] == ",")):
                start = i
                while start > 0 and out[start - 1] == ",":
                    start -= 1
                det = next((k for k in range(start - 1, max(-1, start - 5), -1) if out[k] in lx.DETERMINERS), None)
                if det is None:
                    i += 1
                    continue
                end = i + n
                while end < len(out) and out[end] == ",":
                    end += 1
                # the comma closing the corrected phrase is part of the aside
                out = out[:det] + out[end:]
                j = det + 1
                while j < len(out) and out[j] not in {",", "."}:
                    if out[j] in lx.SHAPE_NOUNS or out[j] in lx.FIXTURE_WORDS:
                        break
                    j += 1
                if j + 1 < len(out) and out[j + 1] == ",":
                    del out[j + 1]
                i = det
            else:
                i += 1
    return out


def split_hard(tokens: list[str]) -> list[list[str]]:
    """Split on sentence punctuation and sequencing words ('then', 'after that', ...)."""
    parts: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        brk = next((b for b in lx.CLAUSE_BREAKS if tuple(tokens[i:i + len(b)]) == b), None)
        if tok in {".", ";", "!", "?", ","} or brk is not None:
            if parts[-1]:
                parts.append([])
            i += len(brk) if brk else 1
            continue
        parts[-1].append(tok)
        i += 1
    return [p for p in parts if p]


class ClauseParser:
    """Turns a prompt into clauses with their noun phrases, for one cell's vocabulary."""

    def __init__(self, vocab: Vocabulary, english: frozenset[str] = frozenset()) -> None:
        self.vocab = vocab
        self.english = english
        self._frame_tokens = sorted(((f, f.split("_")) for f in vocab.frames), key=lambda x: -len(x[1]))

    def parse(self, prompt: str) -> list[Clause]:
        tokens = [self.vocab.correct(t, self.english) for t in tokenize(prompt)]
        # a word right after a determiner or colour stands for a thing: correct it against names
        tokens = [self.vocab.correct_noun(t) if k and (tokens[k - 1] in _NOUN_BEFORE
                                                         or tokens[k - 1] in self.vocab.colours) else t
                  for k, t in enumerate(tokens)]
        tokens = apply_corrections(tokens)
        clauses: list[Clause] = []
        for part in split_hard(tokens):
            for clause in self._clauses(part):
                # a fragment that only says where ('..., in the bin') completes the clause before it
                if clauses and not clause.themes and not clause.has_verb() and clause.dest is not None \
                        and clauses[-1].dest is None:
                    clauses[-1].dest, clauses[-1].prep = clause.dest, clause.prep
                    clauses[-1].words += clause.words
                    clauses[-1].pieces += clause.pieces
                    continue
                clauses.append(clause)
        return [c for c in clauses if c.words]

    # ---- one fragment -----------------------------------------------------------------
    def _clauses(self, toks: list[str]) -> list[Clause]:
        out = [Clause()]
        pending: str | None = None
        i = 0
        while i < len(toks):
            cur = out[-1]
            if toks[i] == "and":
                nxt = self._noun_phrase(toks, i + 1)
                if nxt is not None and cur.themes and cur.dest is None and pending is None \
                        and not nxt[0].is_place:
                    i += 1  # 'the red and the blue block': a list of things
                    continue
                if cur.words:
                    out.append(Clause())
                i += 1
                continue
            frame = self._frame(toks, i)
            if frame is not None:
                np_, j = frame
                cur.words += toks[i:j]
                cur.pieces.append(("np", np_))
                self._attach(cur, np_, pending or "to")
                pending = None
                i = j
                continue
            prep = next((p for p in lx.DESTINATION_PREPS if tuple(toks[i:i + len(p)]) == p), None)
            if prep is not None and self._noun_phrase(toks, i + len(prep)) is not None:
                pending = " ".join(prep)
                cur.words += toks[i:i + len(prep)]
                cur.pieces.append(("prep", pending))
                i += len(prep)
                continue
            found = self._noun_phrase(toks, i)
            if found is not None:
                np_, j = found
                cur.words += toks[i:j]
                cur.pieces.append(("np", np_))
                self._attach(cur, np_, pending)
                pending = None
                i = j
                continue
            cur.words.append(toks[i])
            cur.verb.append(toks[i])
            cur.pieces.append(("w", toks[i]))
            i += 1
        return [c for c in out if c.words]

    def _attach(self, clause: Clause, np_: NounPhrase, prep: str | None) -> None:
        if np_.fixture is not None and self.vocab.fixtures.get(np_.fixture) == "obstacle":
            # "over the wall", "around the post": an obstacle says how to go, never what or where;
            # kept in the clause's words so a skill taught "over the wall" still matches
            np_.scenery = np_.fixture
            clause.verb += [prep or "", np_.fixture]
            return
        if np_.device or np_.scenery and prep is None:
            clause.verb.append("gripper" if np_.device else np_.scenery or "")
            return
        if prep is not None and clause.dest is None:
            clause.dest, clause.prep = np_, prep
        else:
            clause.themes.append(np_)

    def _frame(self, toks: list[str], i: int) -> tuple[NounPhrase, int] | None:
        for name, parts in self._frame_tokens:
            j, k = i, 0
            while j < len(toks) and k < len(parts):
                if toks[j] == parts[k]:
                    j, k = j + 1, k + 1
                elif toks[j] in lx.DETERMINERS and k > 0 or toks[j] in lx.DETERMINERS and k == 0 and j == i:
                    j += 1
                else:
                    break
            if k == len(parts) and toks[i] in (parts[0], *lx.DETERMINERS):
                if j < len(toks) and toks[j] in lx.FRAME_NOUNS:
                    j += 1
                return NounPhrase(text=" ".join(toks[i:j]), frame=name), j
        return None

    def _noun_phrase(self, toks: list[str], i: int) -> tuple[NounPhrase, int] | None:
        v = self.vocab
        start, j = i, i
        np_ = NounPhrase(text="")
        opened = False  # saw a determiner, quantifier or adjective
        while j < len(toks):
            t = toks[j]
            if t in lx.QUANTIFIERS:
                np_.quantifier = "all" if t == "everything" else t
                opened = True
                if t == "everything":
                    np_.noun, np_.plural = "one", True
                    j += 1
                    return self._finish(np_, toks, start, j)
            elif t == "of" and opened and np_.noun is None:
                pass
            elif t in lx.DETERMINERS:
                opened = True
            elif t in lx.REFERENCE_SAME | lx.REFERENCE_OTHER and j + 1 < len(toks) and (
                    toks[j + 1] in lx.SHAPE_NOUNS or toks[j + 1] in lx.PLURAL_NOUNS or toks[j + 1] in v.colours):
                np_.ref = "same" if t in lx.REFERENCE_SAME else "other"
                opened = True
            elif t in v.colours:
                np_.colours += (lx.COLOUR_ALIASES.get(t, t),)
                opened = True
            else:
                break
            j += 1
        if j >= len(toks):
            if np_.colours and not np_.quantifier:
                return self._finish(np_, toks, start, j)
            return None
        t = toks[j]
        if t in v.frames:
            np_.frame = t
            return self._finish(np_, toks, start, j + 1 + (j + 1 < len(toks) and toks[j + 1] in lx.FRAME_NOUNS))
        if t in lx.MODALS and j + 1 < len(toks) and toks[j + 1] in {"you", "u", "we", "i"}:
            return None  # 'can you ...' is a request, not a can
        if t in v.objects or t in v.fixtures or t in v.slots:
            if t in v.objects:
                np_.name = t
            elif t in v.fixtures:
                np_.fixture = t
            else:
                np_.name = t
            j += 1
            if np_.fixture is not None:
                j = self._slot_after_fixture(np_, toks, j)
            return self._finish(np_, toks, start, j)
        if t in lx.SHAPE_NOUNS or t in lx.PLURAL_NOUNS:
            np_.plural = t in lx.PLURAL_NOUNS
            np_.noun = lx.PLURAL_NOUNS.get(t, t)
            return self._finish(np_, toks, start, j + 1)
        if t in lx.FIXTURE_WORDS:
            np_.fixture = t
            return self._finish(np_, toks, start, self._slot_after_fixture(np_, toks, j + 1))
        slot = self._slot(toks, j)
        if slot is not None:
            np_.slot, j = slot
            if j + 1 < len(toks) and toks[j] == "of" or j < len(toks) and toks[j] in {"in", "on"}:
                k = j + 1
                while k < len(toks) and toks[k] in lx.DETERMINERS:
                    k += 1
                if k < len(toks) and (toks[k] in lx.FIXTURE_WORDS or toks[k] in v.fixtures):
                    np_.fixture = toks[k]
                    j = k + 1
            return self._finish(np_, toks, start, j)
        if t in lx.PRONOUNS_SINGULAR | lx.PRONOUNS_PLURAL and not opened:
            np_.pronoun = "it" if t in lx.PRONOUNS_SINGULAR else "them"
            return self._finish(np_, toks, start, j + 1)
        if t in lx.REFLEXIVE and not opened:
            np_.reflexive = True
            return self._finish(np_, toks, start, j + 1)
        if t in lx.DEVICE_NOUNS:
            np_.device = True
            return self._finish(np_, toks, start, j + 1)
        if t in lx.SCENERY and opened:
            np_.scenery = t
            return self._finish(np_, toks, start, j + 1)
        if np_.colours:
            return self._finish(np_, toks, start, j)
        if opened and t.isalpha() and not v.known(t) and t not in lx.FILLERS:
            k = j
            while k < len(toks) and toks[k].isalpha() and not v.known(toks[k]) and toks[k] not in _STOP \
                    and k - j < 3:
                k += 1
            np_.unknown = " ".join(toks[j:k])
            return self._finish(np_, toks, start, k)
        return None

    def _slot_after_fixture(self, np_: NounPhrase, toks: list[str], j: int) -> int:
        """'tray slot 2', "tray's second slot"."""
        k = j + 1 if j < len(toks) and toks[j] in {"'s", "s"} else j
        slot = self._slot(toks, k)
        if slot is not None:
            np_.slot, k = slot
            return k
        return j

    @staticmethod
    def _slot(toks: list[str], j: int) -> tuple[int, int] | None:
        """'slot 2', 'slot two', 'slot2', 'second slot', '2nd slot', 'the last slot'."""
        t = toks[j] if j < len(toks) else ""
        m = re.fullmatch(r"slot(\d+)", t)
        if m:
            return int(m.group(1)), j + 1
        if t in lx.SLOT_WORDS and j + 1 < len(toks):
            n = _number(toks[j + 1])
            if n is not None:
                return n, j + 2
        n = _number(t)
        if n is not None and j + 1 < len(toks) and toks[j + 1] in lx.SLOT_WORDS:
            return n, j + 2
        return None

    def _finish(self, np_: NounPhrase, toks: list[str], start: int, end: int) -> tuple[NounPhrase, int]:
        if np_.frame is None and end < len(toks) and toks[end] in lx.FRAME_NOUNS and np_.name in self.vocab.frames:
            end += 1
        np_.text = " ".join(toks[start:end])
        return np_, end


_NOUN_BEFORE = lx.DETERMINERS | {w for p in lx.DESTINATION_PREPS for w in p}
_STOP = frozenset({w for p in lx.DESTINATION_PREPS for w in p} | {"and", "of", "with", "by", "from", "for"})


def _number(tok: str) -> int | None:
    if tok.isdigit():
        return int(tok)
    return lx.NUMBERS.get(tok)
