"""The YAML dialect of robocell's files (cells, programs).

Safe loading only (never arbitrary objects), duplicate keys refused, and
YAML 1.2 booleans: only true/false are booleans, so a skill parameter named
``on`` (``stack: {object: a, on: b}``) stays the text "on" instead of
PyYAML's YAML-1.1 ``True``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml


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


def load_yaml(text: str) -> Any:
    """Parse YAML text in robocell's dialect (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader derives from SafeLoader


def dump_yaml(data: Any) -> str:
    """YAML text that :func:`load_yaml` reads back to ``data``."""
    return yaml.safe_dump(data, sort_keys=False)
