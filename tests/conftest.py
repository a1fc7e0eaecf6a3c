"""Shared fixtures: cells are fresh per test, seeded, and always closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLETOP = ROOT / "examples" / "cells" / "tabletop.yaml"
KUKA = ROOT / "examples" / "cells" / "kuka.yaml"


# --hardware-backend (alias of --robocell-backend) and the 'hardware' marker's skip
# come from the robocell pytest plugin, robocell/testing/plugin.py.


@pytest.fixture
def tabletop() -> Iterator[object]:
    from robocell.core.cell import Cell

    with Cell.load(TABLETOP) as cell:
        yield cell


@pytest.fixture
def kuka() -> Iterator[object]:
    from robocell.core.cell import Cell

    with Cell.load(KUKA) as cell:
        yield cell
