"""What every command of the ``robocell`` CLI shares: the consoles and the options several commands take.

An option that more than one command takes is defined here once, so that its flag, short form and help read the
same everywhere (``robocell run --cell``, ``record --cell``, ``teach --cell``, ``serve --cell``, ``demo --cell``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

#: standard output of every command; soft-wrapped so that paths and commands can be copied whole
console = Console(highlight=False, soft_wrap=True)
#: error messages (``main`` prints a RobocellError here, exit code 2)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

CellOpt = Annotated[Path, typer.Option("--cell", "-c", help="Cell file (YAML).")]
SkillsOpt = Annotated[
    Optional[list[Path]], typer.Option("--skills", help="Folder of project skills (repeatable).")
]
#: the served arm the operator commands address (reset, doctor, top)
ServerOpt = Annotated[str, typer.Option("--backend", help="The arm server's address, e.g. tcp://127.0.0.1:5555.")]
#: the client keys for that server (reset, doctor, top)
ServerKeysOpt = Annotated[Optional[Path], typer.Option(help="Keys folder, if the server runs with --keys.")]
#: how long those commands wait for the server; each command keeps its own default
ConnectTimeoutOpt = Annotated[float, typer.Option(
    help="Seconds to wait for the server to answer (a server that is still starting).")]
