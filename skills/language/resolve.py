"""Noun phrases to cell names: objects by colour, shape and name; fixtures, slots, frames.

Never guesses: no match or several matches for a singular phrase raise
:class:`LanguageError` listing the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from robocell.errors import LanguageError
from robocell.skills.language import lexicon as lx
from robocell.skills.language.parse import NounPhrase

if TYPE_CHECKING:
    from collections.abc import Sequence

    from robocell.cellfile.spec import CellSpec


@dataclass
class Discourse:
    """What earlier clauses of the same prompt talked about (for 'it', 'the same one', 'the other one')."""

    last: list[str] = field(default_factory=list)  # objects of the latest object phrase
    mentioned: list[str] = field(default_factory=list)  # every object mentioned, in order
    holding: str | None = None  # what the plan's gripper holds after the steps so far

    def mention(self, objects: list[str]) -> None:
        self.last = list(objects)
        self.mentioned += [o for o in objects if o not in self.mentioned]


class Resolver:
    """Resolves noun phrases against one cell file."""

    def __init__(self, spec: CellSpec) -> None:
        self.spec = spec
        self.objects = [o.name for o in spec.objects]
        self.fixtures = {f.name: f.type for f in spec.fixtures}
        # obstacles and keep-out fixtures are named in the cell but are never a place to put things
        self.keep_out = [f.name for f in spec.fixtures if f.is_obstacle or f.keep_out]
        self.slots = [s for f in spec.fixtures if f.slots is not None for s in f.slot_poses()]
        self.frames = [f.name for f in spec.frames]
        self._colour = {o.name: o.color_name for o in spec.objects}
        self._shape = {o.name: o.shape for o in spec.objects}

    # ---- objects ------------------------------------------------------------------
    def objects_for(self, np_: NounPhrase, ctx: Discourse, clause: str, exclude: Sequence[str] = ()) -> list[str]:
        if np_.unknown is not None:
            raise LanguageError(
                f"in '{clause}': the cell has no '{np_.unknown}'; its objects are: {', '.join(self.objects)}. "
                "Name one of them (by colour, shape or name)"
            )
        if np_.reflexive:
            raise LanguageError(
                f"in '{clause}': '{np_.text}' would put an object on itself ({', '.join(ctx.last) or 'nothing'}); "
                "name a different target"
            )
        if np_.is_place:
            raise LanguageError(f"in '{clause}': '{np_.text}' is a place, not an object to move; "
                                f"the objects are: {', '.join(self.objects)}")
        if np_.pronoun is not None or np_.ref == "same":
            if not ctx.last or (np_.pronoun == "it" and len(ctx.last) != 1):
                raise LanguageError(
                    f"in '{clause}': '{np_.text}' refers to nothing said before; say which object: "
                    f"{', '.join(self.objects)}"
                )
            return list(ctx.last)
        if np_.name is not None:
            if np_.name not in self.objects:
                raise LanguageError(f"in '{clause}': '{np_.name}' is not an object; the objects are: "
                                    f"{', '.join(self.objects)}")
            return [np_.name]
        matches = [o for o in self.objects if self._fits(o, np_)]
        if np_.ref == "other":
            matches = [o for o in matches if o not in ctx.mentioned and o not in exclude]
        described = np_.text or "that"
        if not matches:
            colours = sorted(set(self._colour.values()))
            raise LanguageError(
                f"in '{clause}': no object is '{described}'; the objects are: {', '.join(self.objects)} "
                f"(colours: {', '.join(colours)}). Name one of them"
            )
        if np_.quantifier in {"all", "every", "each"} or (np_.plural and np_.quantifier != "both"):
            return matches
        if np_.quantifier == "both":
            if len(matches) != 2:
                raise LanguageError(f"in '{clause}': 'both' needs exactly two objects but '{described}' fits "
                                    f"{len(matches)}: {', '.join(matches)}")
            return matches
        if len(matches) > 1:
            raise LanguageError(
                f"in '{clause}': '{described}' is ambiguous: it could be {', '.join(matches)}. "
                "Say which one (by colour or name)"
            )
        return matches

    def _fits(self, obj: str, np_: NounPhrase) -> bool:
        name_words = set(obj.split("_"))
        for c in np_.colours:
            if self._colour[obj] != c and c not in name_words:
                return False
        if np_.noun is not None:
            shape = lx.SHAPE_NOUNS.get(np_.noun, "any")
            if shape != "any" and self._shape[obj] != shape and np_.noun not in name_words:
                return False
        return bool(np_.colours or np_.noun or np_.quantifier)

    # ---- places ---------------------------------------------------------------------
    def place_for(self, np_: NounPhrase, ctx: Discourse, clause: str, theme: list[str]) -> tuple[str, str]:
        """(name, kind) of where something goes; kind is object | fixture | slot | frame."""
        targets = [t for t in self.objects + list(self.fixtures) + self.slots + self.frames
                   if t.partition(".")[0] not in self.keep_out]
        if np_.reflexive:
            raise LanguageError(f"in '{clause}': '{np_.text}' would put {', '.join(theme) or 'an object'} on "
                                f"itself; name a different target ({', '.join(t for t in targets if t not in theme)})")
        if np_.frame is not None:
            return np_.frame, "frame"
        if np_.scenery is not None:
            raise LanguageError(f"in '{clause}': '{np_.text}' is not a place a skill can use; the targets are: "
                                f"{', '.join(targets)}")
        if np_.unknown is not None:
            raise LanguageError(
                f"in '{clause}': the cell has no '{np_.unknown}'; the places are: {', '.join(targets)}"
            )
        if np_.slot is not None or np_.fixture is not None:
            fixture = self._fixture(np_, clause)
            if fixture in self.keep_out:
                kind = "an obstacle" if self.fixtures[fixture] == "obstacle" else "a keep-out fixture"
                raise LanguageError(f"in '{clause}': '{fixture}' is {kind}: nothing may be put in or on it; "
                                    f"the places are: {', '.join(targets)}")
            if np_.slot is None:
                return fixture, "fixture"
            slots = [s for s in self.slots if s.startswith(fixture + ".")]
            n = len(slots) if np_.slot == -1 else np_.slot
            name = f"{fixture}.slot{n}"
            if name not in slots:
                raise LanguageError(
                    f"in '{clause}': '{fixture}' has no slot {np_.slot}; its slots are: {', '.join(slots) or '(none)'}"
                )
            return name, "slot"
        if np_.name is not None and np_.name in self.slots:
            return np_.name, "slot"
        obj = self.objects_for(np_, ctx, clause, exclude=theme)
        if len(obj) != 1:
            raise LanguageError(f"in '{clause}': '{np_.text}' names {len(obj)} objects ({', '.join(obj)}); "
                                "a target must be one place")
        if obj[0] in theme:
            raise LanguageError(f"in '{clause}': cannot put {obj[0]} on itself; name a different target "
                                f"({', '.join(o for o in targets if o != obj[0])})")
        return obj[0], "object"

    def _fixture(self, np_: NounPhrase, clause: str) -> str:
        word = np_.fixture
        if word in self.fixtures:
            return word
        if word is None:  # 'slot 2' alone: the only fixture with slots
            kinds = sorted({s.split(".")[0] for s in self.slots})
        else:
            kinds = [f for f, t in self.fixtures.items() if t == lx.FIXTURE_WORDS.get(word, word)]
        if len(kinds) == 1:
            return kinds[0]
        if not kinds:
            raise LanguageError(f"in '{clause}': the cell has no {word or 'fixture with slots'}; its fixtures are: "
                                f"{', '.join(self.fixtures) or '(none)'}")
        raise LanguageError(f"in '{clause}': '{np_.text}' is ambiguous: it could be {', '.join(kinds)}")
