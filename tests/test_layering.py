"""The rooms' layering contracts (pyproject.toml, [tool.importlinter]) hold, and a broken one fails the check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

TOOL = ROOT / "tools" / "rooms.py"


def _lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), "lint", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_every_layering_contract_is_kept() -> None:
    out = _lint()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_an_arrow_pointing_up_breaks_the_check(tmp_path: Path) -> None:
    # the contracts' own machinery, fed one that today's code breaks (the CLI imports the core): lint must fail
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["robocell"]\nexclude_type_checking_imports = true\n\n'
        '[[tool.importlinter.contracts]]\nname = "upside down"\ntype = "layers"\n'
        'layers = ["robocell.core", "robocell.cli"]\n'
    )
    out = _lint(str(config))
    assert out.returncode != 0
    assert "robocell.core is not allowed to import robocell.cli" not in out.stdout  # the arrow is cli -> core
    assert "robocell.cli is not allowed to import robocell.core" in out.stdout, out.stdout


def test_the_picture_in_docs_architecture_is_the_code_s() -> None:
    # the doc's Mermaid block is `python tools/rooms.py graph`, pasted; regenerate it when the rooms' imports change
    out = subprocess.run([sys.executable, str(TOOL), "graph"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert out.stdout in doc, "docs/architecture.md: replace the mermaid block by `python tools/rooms.py graph`"
