"""The YAML dialect of robocell's files (cells, programs).

Safe loading only (never arbitrary objects), duplicate keys refused, and
YAML 1.2 booleans: only true/false are booleans, so a skill parameter named
``on`` (``stack: {object: a, on: b}``) stays the text "on" instead of
PyYAML's YAML-1.1 ``True``.

Bounded: a document may not expand, through anchors and aliases (``&a`` /
``*a``), to more than :data:`MAX_NODES` values, nor refer to itself, nor be
longer than :data:`MAX_CHARS`.  A "billion laughs" file (aliases of aliases of
aliases) is a few hundred bytes and expands to billions of values; validating
it hung ``robocell cell check`` for minutes.  It is refused before anything is
built.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml

#: values a document may expand to, counting each alias as a copy of what it names
#: (the largest example cell has ~600; a hand-written robocell file stays far below)
MAX_NODES = 100_000
#: characters of YAML text read at most (robocell's files are a few kB)
MAX_CHARS = 4_000_000


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans that refuses duplicate keys."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable) and key in seen:
            first = seen[key]
            raise yaml.constructor.ConstructorError(
                None, None,
                f"duplicate key {key!r} (first given at line {first.line + 1}); give each key once",
                key_node.start_mark,
            )
        if isinstance(key, Hashable):
            seen[key] = key_node.start_mark
    return dict(loader.construct_mapping(node, deep=deep))


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class DocumentTooLarge(yaml.YAMLError):
    """The text, or what its aliases expand to, is beyond what a robocell file can need."""


def load_yaml(text: str) -> Any:
    """Parse YAML text in robocell's dialect (raises yaml.YAMLError, DocumentTooLarge among them)."""
    if len(text) > MAX_CHARS:
        raise DocumentTooLarge(f"the text is {len(text)} characters long, more than the {MAX_CHARS} a robocell "
                               "file may have; is it the right file?")
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()  # the node graph: an alias is one shared node, so this is cheap
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """DocumentTooLarge when the node graph expands to more than MAX_NODES values, or refers to itself."""
    sizes: dict[int, int] = {}  # node id -> values it expands to, each node counted once
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            mark = node.start_mark
            raise DocumentTooLarge(f"line {mark.line + 1}: an alias refers to the value that contains it "
                                   "(a recursive anchor); write the value out instead")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_NODES:
                mark = node.start_mark
                raise DocumentTooLarge(
                    f"line {mark.line + 1}: through anchors and aliases (&name, *name) the file expands to more "
                    f"than {MAX_NODES} values (a 'billion laughs' document); no robocell file needs that many. "
                    "Write the values out, or use fewer aliases of aliases")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def dump_yaml(data: Any) -> str:
    """YAML text that :func:`load_yaml` reads back to ``data``."""
    return yaml.safe_dump(data, sort_keys=False)
