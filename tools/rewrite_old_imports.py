"""Rewrite imports of robocell's old flat module paths to the rooms (robocell.cell -> robocell.core.cell, ...).

    python tools/rewrite_old_imports.py            # list what would change (file: old -> new)
    python tools/rewrite_old_imports.py --write    # rewrite those files in place

The old paths still import (thin re-export modules), but code inside the repository uses the rooms so that the
layering contracts see its real arrows. Run this after merging a branch that was written against the flat layout.
Entry-point group names (``group="robocell.backends"``) are names, not modules, and are left alone;
``robocell.testing`` and ``robocell.pytest_plugin`` are the public faces and are left alone too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: old module (under robocell.) -> its module in the rooms
MOVES = {
    # core: contracts
    "arm": "core.arm", "cell": "core.cell", "backends": "core.backends", "outputs": "core.outputs",
    # motion
    "kinematics": "motion.kinematics", "kinematics_setup": "motion.kinematics_setup",
    "planning": "motion.planning", "trajectory": "motion.trajectory", "safety": "motion.safety",
    "models": "motion.arm_models",
    # cell file
    "cellfile": "cellfile.spec", "cellfile_arm": "cellfile.arm", "cellfile_types": "cellfile.types",
    "cellfile_errors": "cellfile.errors", "cellfile_describe": "cellfile.description",
    "cellfile_placement": "cellfile.placement", "randomization": "cellfile.randomization",
    "yamlio": "cellfile.yamlio",
    # recording
    "demonstration": "recording.demonstration", "recording": "recording.recorder",
    "demo_scripts": "recording.demo_scripts",
    # running programs
    "runner": "run.runner",
    # evaluation
    "evaluate": "eval.evaluate", "eval_run": "eval.run", "eval_report": "eval.report", "trial": "eval.trial",
    "engine_local": "eval.engines.local", "engine_ray": "eval.engines.ray",
    "engine_worker": "eval.engines.worker", "engine_preload": "eval.engines.preload",
    # CLI
    "cli": "cli.main", "cli_doctor": "cli.doctor", "cli_learn": "cli.learn", "cli_progress": "cli.progress",
    "cli_record": "cli.record", "cli_reset": "cli.reset", "cli_serve": "cli.serve", "cli_teach": "cli.teach",
    "cli_top": "cli.top", "eval_cli": "cli.eval",
    # testing
    "testing": "testing.assertions", "pytest_plugin": "testing.plugin",
}
KEEP = {"testing", "pytest_plugin"}
REWRITE = {k: v for k, v in MOVES.items() if k not in KEEP}
PATTERN = re.compile(r"(?<![\w.])robocell\.(" + "|".join(sorted(map(re.escape, REWRITE), key=len, reverse=True))
                     + r")(?!\w)")
#: rooms whose name is also an old module's (robocell.cellfile was a module, is a room now): their modules.
#: robocell.cellfile.spec is a new path already, robocell.cellfile.CellSpec an old one, bare robocell.cellfile the room
SUBMODULES = {old: {p.stem for p in (ROOT / "robocell" / old).iterdir() if p.suffix == ".py" or p.is_dir()}
              for old in REWRITE if (ROOT / "robocell" / old).is_dir()}
#: old modules whose dotted name is also an entry-point group's (core/plugins.py)
ENTRY_POINT_GROUPS = {"backends"}
EXTENSIONS = (".py", ".md", ".toml", ".yaml", ".yml", ".cfg", ".txt", ".ini")


def _sub(m: re.Match[str]) -> str:
    before = m.string[max(0, m.start() - 14):m.start()]
    if before.endswith(('group="', "[", 'entry-points."')):
        return m.group(0)  # an entry-point group, not a module
    old = m.group(1)
    quoted = m.string[m.start() - 1:m.start()] + m.string[m.end():m.end() + 1]
    if old in ENTRY_POINT_GROUPS and quoted in ('""', "''", "``"):
        # "robocell.backends" alone in quotes is the group's name (plugins.available("robocell.backends", ...),
        # core/plugins.py's docstring); rewriting it would silently hide every installed third-party backend
        return m.group(0)
    if old in SUBMODULES:
        # ambiguous: rewrite only an old module's name reached through it (robocell.cellfile.CellSpec,
        # from robocell.cellfile import load_cell_spec, robocell.cli:main), never the room or its modules
        after = re.match(r"(\.|:| import \(?\s*)(\w+)", m.string[m.end():])
        if after is None or (after.group(1) != ":" and after.group(2) in SUBMODULES[old]):
            return m.group(0)
    return "robocell." + REWRITE[old]


def main(write: bool) -> int:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        path = ROOT / name
        if not name.endswith(EXTENSIONS) or name == "requirements.lock" or not path.is_file():
            continue
        if name in ("tools/rewrite_old_imports.py", "tests/test_old_import_paths.py", "docs/architecture.md") or (
                name.startswith("robocell/") and name.count("/") == 1 and name[9:-3] in MOVES):
            continue  # the map itself, the test of the old paths and the re-export modules name old paths on purpose
        text = path.read_text()
        new = PATTERN.sub(_sub, text)
        if new == text:
            continue
        for line, (a, b) in enumerate(zip(text.splitlines(), new.splitlines()), start=1):
            if a != b:
                print(f"{name}:{line}: {a.strip()}  ->  {b.strip()}")
        if write:
            path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main("--write" in sys.argv[1:]))
