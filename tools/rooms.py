"""robocell's rooms and their arrows, read from the code.

    python tools/rooms.py lint [CONFIG]   # check the layering contracts of pyproject.toml ([tool.importlinter])
    python tools/rooms.py graph           # print the room-to-room imports as a Mermaid graph (docs/architecture.md)

Both read the imports with grimp, import-linter's graph builder. grimp finds a package's modules by walking the
package's folder, but ``robocell.skills``, ``robocell.sim`` and ``robocell.hardware`` live in the top-level folders
``skills/``, ``sim/`` and ``hardware/`` (pyproject.toml maps them with ``package-dir``), outside ``robocell/``. So
both commands first build a *view*: a temporary ``robocell/`` folder of symbolic links to every entry of the real
one plus ``skills``, ``sim`` and ``hardware``, and put it first on the path; grimp follows the links.

Imports inside ``if TYPE_CHECKING:`` are left out (they never run); imports inside functions count, because they
run when the function does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the packages that live outside robocell/ (pyproject.toml, [tool.setuptools.package-dir])
MAPPED = {"skills": ROOT / "skills", "sim": ROOT / "sim", "hardware": ROOT / "hardware"}
#: the rooms in the order of the layering contract, top first; each is drawn as one node
ROOMS = [
    "robocell.cli", "robocell.eval", "robocell.testing", "robocell.run", "robocell.skills", "robocell.sim",
    "robocell.hardware", "robocell.recording", "robocell.core", "robocell.cellfile", "robocell.motion",
    "robocell.errors",
]


@contextmanager
def view() -> Iterator[Path]:
    """A folder holding a ``robocell`` package made of links to the real files and the mapped packages."""
    with tempfile.TemporaryDirectory(prefix="robocell-rooms-") as tmp:
        package = Path(tmp) / "robocell"
        package.mkdir()
        for entry in (ROOT / "robocell").iterdir():
            if entry.name != "__pycache__":
                (package / entry.name).symlink_to(entry)
        for name, folder in MAPPED.items():
            (package / name).symlink_to(folder)
        yield Path(tmp)


def lint(config: Path = ROOT / "pyproject.toml") -> int:
    """Run ``lint-imports`` with ``config``'s contracts on the view; its exit status is 0 when all are kept."""
    with view() as path:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
        lint_imports = Path(sys.executable).with_name("lint-imports")
        # --no-cache: the cache would key on the view's temporary path, new on every run. The view is also the
        # working folder: lint-imports puts the working folder first on the path, and the checkout's own
        # robocell/ (without skills, sim, hardware) would win there.
        return subprocess.run([str(lint_imports), "--no-cache", str(config)],
                              cwd=path, env=env, check=False).returncode


def room_of(module: str) -> str | None:
    """The room a module belongs to (``robocell.eval.engines.local`` -> ``robocell.eval``), None for shims."""
    for room in ROOMS:
        if module == room or module.startswith(room + "."):
            return room
    return None


def room_imports() -> Counter[tuple[str, str]]:
    """How many module-to-module imports go from each room to each other room."""
    import grimp

    with view() as path:
        sys.path.insert(0, str(path))
        try:
            for name in [m for m in sys.modules if m == "robocell" or m.startswith("robocell.")]:
                del sys.modules[name]  # find robocell in the view, not through the editable install's finder
            graph = grimp.build_graph("robocell", exclude_type_checking_imports=True, cache_dir=None)
        finally:
            sys.path.remove(str(path))
    counts: Counter[tuple[str, str]] = Counter()
    for importer in graph.modules:
        source = room_of(importer)
        for imported in graph.find_modules_directly_imported_by(importer):
            target = room_of(imported)
            if source and target and source != target:
                counts[(source, target)] += 1
    return counts


def mermaid() -> str:
    """The room-to-room imports as a Mermaid flowchart.

    Arrows only, no import counts: the doc's picture must change when an arrow appears or goes, not with every
    import a change adds inside an existing arrow (that made every merge fail the picture's test).
    """
    short = {room: room.removeprefix("robocell.") for room in ROOMS}
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"    {short[room]}[{short[room]}]" for room in ROOMS]
    for source, target in sorted(room_imports(), key=lambda st: (ROOMS.index(st[0]), ROOMS.index(st[1]))):
        lines.append(f"    {short[source]} --> {short[target]}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["lint"] and len(argv) <= 2:
        return lint(*(Path(a).resolve() for a in argv[1:]))
    if argv == ["graph"]:
        sys.stdout.write(mermaid())
        return 0
    sys.stderr.write("usage: python tools/rooms.py lint [CONFIG] | graph\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
