"""The one lookup of plugins by name: backends, drivers and skill packages.

Each kind has a table of what robocell ships (``"name": "module:attribute"``) and an entry-point group other
packages add to (``robocell.backends``, ``robocell.drivers``, ``robocell.skills``); a shipped name wins over an
installed one of the same name. Nothing is imported until a plugin is asked for by name (:func:`load`), so that
``import robocell`` stays light and the core never imports ``robocell.sim`` or ``robocell.hardware`` itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any


def installed(group: str) -> list[tuple[str, str]]:
    """(name, "module:attribute") of each entry point of ``group``, in the order the environment lists them."""
    return [(ep.name, ep.value) for ep in entry_points(group=group)]


def available(group: str, builtin: Mapping[str, str]) -> dict[str, str]:
    """Name -> reference of every plugin of a kind: the shipped ones, then installed ones of other names."""
    found = dict(builtin)
    for name, ref in installed(group):
        found.setdefault(name, ref)
    return found


def load(ref: str) -> Any:
    """Import what ``"module:attribute"`` (or a plain ``"module"``) names; ImportError propagates to the caller."""
    module_name, _, attr = ref.partition(":")
    module = importlib.import_module(module_name.strip())
    return getattr(module, attr.strip()) if attr else module
