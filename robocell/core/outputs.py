"""Output paths the command line writes: checked before the work, never replaced without ``--force``.

One rule for every command (``robocell run --record/--picture``, ``record --out``,
``learn --plot`` and its skill file, ``eval --junit/--report/--record``,
``serve --audit``, ``keys generate``, ``teach --save``):

- the folder an output goes into must exist or be creatable, and be writable;
  this is checked *before* any work starts, so a typo costs nothing;
- a file (or a non-empty folder) that exists already is refused unless the
  command was given ``--force``;
- an append-only log (``serve --audit``) is appended to: an existing log is
  the point, so it is never refused for existing, only for being unwritable;
- robocell's own default outputs (``out/demo.png``, ``out/teach.png``) are
  scratch files and are replaced: nobody named them.

Every refusal is an :class:`~robocell.errors.OutputError`: one paragraph naming
the option, the path, what is wrong and what to do (exit code 2 on the CLI).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from robocell.errors import OutputError

Kind = Literal["file", "folder", "append"]


def check_output(path: str | Path, option: str, *, force: bool = False, kind: Kind = "file",
                 suffix: str | None = None, what: str = "the output") -> Path:
    """``path`` if robocell may write it for ``option``; :class:`OutputError` saying why not otherwise.

    ``kind`` is ``"file"`` (replaced only with ``force``), ``"folder"`` (a folder of files,
    refused when it exists and is not empty, unless ``force``) or ``"append"`` (a log that is
    appended to). ``suffix`` (".gif") is the only file type the option writes, and ``what``
(``"an animation"``) names it in the message.
    Nothing is created: the check probes the nearest existing folder.
    """
    p = Path(path)
    where = f"{option} {p}"
    if suffix is not None and p.suffix.lower() != suffix:
        raise OutputError(f"{where}: {what} is a {suffix} file; use e.g. {option} {p.with_suffix(suffix)}")
    if kind == "folder":
        if p.exists() and not p.is_dir():
            raise OutputError(f"{where}: this is a file, not a folder; give a folder to write into")
        if p.is_dir():
            if any(p.iterdir()) and not force:
                raise OutputError(f"{where}: the folder exists and is not empty; nothing was written. "
                                  "Give a new folder, or pass --force to write into it (files of the same "
                                  "name are replaced)")
            _probe(p, where)
            return p
    else:
        if p.is_dir():
            raise OutputError(f"{where}: this is a folder; give the name of a file to write (inside it, say)")
        if p.exists():
            if kind == "file" and not force:
                raise OutputError(f"{where}: the file exists; nothing was written. Give another name, or pass "
                                  "--force to replace it")
            if not os.access(p, os.W_OK):
                raise OutputError(f"{where}: the file exists and is not writable (permissions); change its "
                                  "permissions or give another path")
    _probe(_nearest_existing(p.parent, where), where)
    return p


def _nearest_existing(folder: Path, where: str) -> Path:
    """The deepest existing ancestor of ``folder`` (folder itself if it exists); it must be a folder."""
    d = folder if str(folder) else Path(".")
    while not d.exists():
        if d.parent == d:
            break
        d = d.parent
    if not d.is_dir():
        raise OutputError(f"{where}: {d} is a file, not a folder, so nothing can be written under it; "
                          "give a path inside a folder")
    return d


def _probe(folder: Path, where: str) -> None:
    # Creating a file is the only honest test: os.access says yes to root on a read-only
    # folder, and says nothing about a full or read-only file system.
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".robocell-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"{where}: cannot write in {folder} ({reason}); nothing was done. Give a path "
                          "in a folder you can write to, or fix the folder's permissions") from None


__all__ = ["check_output"]
