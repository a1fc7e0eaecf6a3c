"""The closed-class words of operator English that the rule-based parser knows.

Open-class words (verbs, paraphrases) are left to the sentence-embedding model;
these lists only cover grammar (determiners, prepositions, quantifiers,
references, numbers) and the words that name the kinds of things a cell file
declares (colours, shapes, fixture types).
"""

from __future__ import annotations

DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those", "my", "our"})
QUANTIFIERS = frozenset({"all", "every", "each", "both", "everything"})
PRONOUNS_SINGULAR = frozenset({"it"})
PRONOUNS_PLURAL = frozenset({"them", "they"})
# words between clauses or around them that carry no meaning for the program
FILLERS = frozenset({
    "please", "pls", "plz", "kindly", "could", "can", "would", "will", "you", "u", "robot", "now", "also",
    "too", "again", "as", "well", "just", "then", "ok", "okay", "and", "first", "finally", "lastly",
    "next", "afterwards", "after", "that", "i", "want", "need", "me", "s",
})
CLAUSE_BREAKS = (("and", "then"), ("after", "that"), ("then",), ("afterwards",), ("finally",),
                 ("lastly",), ("after", "this"))
CORRECTIONS = (("i", "mean"), ("or", "rather"), ("sorry",), ("no",))
COLOUR_ALIASES = {"gray": "grey", "crimson": "red", "scarlet": "red", "navy": "blue", "violet": "purple"}
# shape nouns -> cell shape ("any" matches every shape)
SHAPE_NOUNS = {
    "block": "box", "cube": "box", "brick": "box", "box": "box",
    "can": "cylinder", "cylinder": "cylinder", "tube": "cylinder", "tin": "cylinder",
    "one": "any", "thing": "any", "object": "any", "item": "any", "piece": "any",
}
PLURAL_NOUNS = {
    "blocks": "block", "cubes": "cube", "bricks": "brick", "boxes": "box", "cans": "can",
    "cylinders": "cylinder", "tubes": "tube", "tins": "tin", "ones": "one", "things": "thing",
    "objects": "object", "items": "item", "pieces": "piece",
}
# fixture type words (a fixture is also reachable by its name in the cell file)
FIXTURE_WORDS = {
    "bin": "bin", "container": "bin", "bucket": "bin", "basket": "bin", "crate": "bin",
    "tray": "tray",
}
SLOT_WORDS = frozenset({"slot", "spot", "position", "place", "compartment", "pocket"})
# scenery: words an operator uses for the surroundings, never a target of a skill
SCENERY = frozenset({"table", "desk", "workspace", "bench", "area", "up", "down", "back"})
FRAME_NOUNS = frozenset({"pose", "position", "frame", "point", "spot", "location"})
# prepositions that introduce where something goes, longest first
DESTINATION_PREPS = (
    ("on", "top", "of"), ("on", "to"), ("in", "to"), ("top", "of"), ("into",), ("onto",), ("inside",),
    ("in",), ("on",), ("to",), ("at",), ("over",), ("above",), ("towards",), ("toward",),
)
NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "last": -1,
}
REFERENCE_SAME = frozenset({"same"})
REFERENCE_OTHER = frozenset({"other", "remaining", "last"})
REFLEXIVE = frozenset({"itself", "themselves"})
DEVICE_NOUNS = frozenset({"gripper", "hand", "fingers", "claw", "jaws", "arm", "robot"})
MODALS = frozenset({"can", "could", "would", "will"})
