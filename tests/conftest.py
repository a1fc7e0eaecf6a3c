"""Shared fixtures: cells are fresh per test, seeded, and always closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLETOP = ROOT / "examples" / "cells" / "tabletop.yaml"
KUKA = ROOT / "examples" / "cells" / "kuka.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hardware-backend", default=None,
        help="address of a real arm (tcp://host:port); enables tests marked 'hardware'",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware-backend"):
        return
    skip = pytest.mark.skip(reason="needs a real arm: pass --hardware-backend tcp://host:port")
    for item in items:
        # the marker, not item.keywords: keywords also hold folder names (tests/hardware/)
        if item.get_closest_marker("hardware") is not None:
            item.add_marker(skip)


@pytest.fixture
def tabletop() -> Iterator[object]:
    from robocell.cell import Cell

    with Cell.load(TABLETOP) as cell:
        yield cell


@pytest.fixture
def kuka() -> Iterator[object]:
    from robocell.cell import Cell

    with Cell.load(KUKA) as cell:
        yield cell
