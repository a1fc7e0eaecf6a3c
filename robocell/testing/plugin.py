"""The robocell pytest plugin (entry point ``pytest11``): installed with robocell, active in every pytest run.

Fixtures
    ``robocell_cell``   factory: ``robocell_cell("cells/tabletop.yaml", seed=3)`` gives a fresh cell
                        (simulated unless the test is marked ``hardware``), closed after the test.
    ``robocell_skills`` factory: ``robocell_skills(cell)`` gives the skills as methods (``s.pick(...)``).
    ``robocell_backend`` the backend address this test runs on (``sim`` or the ``--robocell-backend``).

Marker
    ``@pytest.mark.hardware``  needs a real arm: skipped unless ``--robocell-backend tcp://host:port``
                               (alias ``--hardware-backend``) is given.

Options
    ``--robocell-seed N``       default seed of ``robocell_cell`` (0); objects are randomised in their regions.
    ``--robocell-pictures DIR`` on failure, a PNG of every simulated cell the test opened.

Assertions in words are in :mod:`robocell.testing` (``assert_in(cell, "red_block", "bin")``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from robocell.core.cell import Cell
    from robocell.skills import Skills

_CELLS = pytest.StashKey[list[Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robocell", "robocell cells and hardware")
    group.addoption("--robocell-backend", "--hardware-backend", dest="robocell_backend", default=None,
                    metavar="ADDRESS",
                    help="address of a real arm (tcp://host:port); runs the tests marked 'hardware' on it")
    group.addoption("--robocell-seed", dest="robocell_seed", type=int, default=0,
                    help="default seed of the robocell_cell fixture (default 0)")
    group.addoption("--robocell-pictures", dest="robocell_pictures", default=None, metavar="DIR",
                    help="write a PNG of every simulated cell of a failing test to DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hardware: needs a real arm; skipped unless --robocell-backend tcp://host:port is given")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("robocell_backend"):
        return
    skip = pytest.mark.skip(reason="needs a real arm: pass --robocell-backend tcp://host:port")
    for item in items:
        if item.get_closest_marker("hardware") is not None:  # not keywords: those hold folder names too
            item.add_marker(skip)


@pytest.fixture
def robocell_backend(request: pytest.FixtureRequest) -> str:
    """``sim``, or the hardware address for a test marked ``hardware``."""
    if request.node.get_closest_marker("hardware") is not None:
        return str(request.config.getoption("robocell_backend"))
    return "sim"


@pytest.fixture
def robocell_cell(request: pytest.FixtureRequest, robocell_backend: str) -> Iterator[Callable[..., Cell]]:
    """Factory of fresh, seeded cells; every cell it made is closed after the test."""
    from robocell.core.cell import Cell

    opened: list[Cell] = []
    request.node.stash[_CELLS] = opened
    default_seed = request.config.getoption("robocell_seed")

    def make(path: str | Path, *, seed: int | None = default_seed, **options: Any) -> Cell:
        if robocell_backend == "sim":
            options.setdefault("seed", seed)
        cell = Cell.load(path, robocell_backend, **options)
        opened.append(cell)
        return cell

    yield make
    for cell in opened:
        cell.close()


@pytest.fixture
def robocell_skills() -> Callable[..., Skills]:
    """``robocell_skills(cell, skills=["my_skills/"])``: the skill library as methods on one arm."""
    from robocell.run.runner import load_registry
    from robocell.skills import Skills

    def make(cell: Cell, arm: str | None = None, skills: list[str | Path] | None = None) -> Skills:
        return Skills(cell, arm, load_registry(skills or []))

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    folder = item.config.getoption("robocell_pictures")
    if folder and report.failed and call.when == "call":
        cells: list[Any] = item.stash.get(_CELLS, [])
        for i, cell in enumerate(cells):
            path = _picture(cell, Path(folder), item.nodeid, i)
            if path is not None:
                report.sections.append(("robocell", f"picture of the cell at the failure: {path}"))
    return report


def _picture(cell: Cell, folder: Path, nodeid: str, index: int) -> Path | None:
    if getattr(cell.backend, "render", None) is None:
        return None  # a hardware cell has no renderer
    from robocell.errors import RobocellError
    from robocell.core.images import save_png

    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    try:
        return save_png(cell.render(), folder / f"{name}-{index}.png")
    except RobocellError:  # closed or camera-less cell: the failure itself is what matters
        return None
