"""Every command block in README.md and docs/*.md runs as pasted.

Each fenced block of a Markdown file becomes one test case, named ``file:line``
(the line of its opening fence):

- ``sh``, ``bash``, ``shell`` blocks run as a script under ``bash -e -o pipefail``;
  ``console`` blocks run their ``$ `` lines.
- ``python`` blocks are complete programs. One whose first line names a file
  (``# my_task.py — run with: robocell run my_task.py …``) is written to that path
  and run with the command its comment gives (a ``test_*.py`` file without one is
  run by pytest); any other is written to a scratch file and run with
  ``.venv/bin/python``.
- Blocks of other languages (``yaml``, ``json``, ``toml``, ``text``, untagged) show
  files or output and are not run; an untagged block that looks like a command
  fails, so that a command cannot escape the test by a missing tag.

The blocks of one file run in order in one fresh copy of the repository (the
files git knows, as they are in the working tree) whose ``.venv`` is a symlink to
the real virtual environment, with ``.venv/bin`` first on PATH as after
``source .venv/bin/activate``; outputs (``out/``, ``keys/``, ``library/``) stay in
the copy. Each block has a hard timeout; whatever it left running (a server
started with ``&``) is killed with its process group afterwards.

A block that cannot run here says so in the doc, on the line(s) right before
its fence, and becomes a skipped test with that reason:

    <!-- doc-test: skip reason="needs a real UR arm" -->
    <!-- doc-test: skip-command="--gui" reason="needs a display" -->

``skip`` skips the whole block; ``skip-command="TEXT"`` leaves out of the run each
command of the block that contains TEXT, and each such command becomes its own
skipped test (``file:line`` of the command). Nothing is skipped silently: a block
of a runnable language has a run or an annotated skip, an annotation needs a
reason and must match something, and the checks below fail otherwise.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

SHELL_LANGS = {"sh", "bash", "shell", "console"}
PYTHON_LANGS = {"python", "py"}
DATA_LANGS = {"", "yaml", "yml", "json", "toml", "text", "txt", "ini", "xml", "html", "diff", "mermaid"}
BLOCK_TIMEOUT_S = 1200.0  # one block, hard; the heaviest documented block runs a few minutes
KILL_GRACE_S = 10.0
TAIL_LINES = 60

FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)\s*$")
ANNOTATION = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<action>[\w-]+)(?P<rest>.*?)-->\s*$")
OPTION = re.compile(r'([\w-]+)="([^"]*)"')
# A line of an untagged block that would be a command if it were tagged.
COMMAND_LIKE = re.compile(r"^\s*(\$ |\$R |R=|robocell |\.venv/bin/|make |python3? |pip )")
# "# my_task.py — run with: robocell run my_task.py --cell …"
FILE_HEADER = re.compile(r"^#\s*(?P<path>[\w./-]+\.py)\b(?:.*?\brun with:\s*(?P<cmd>.+))?\s*$")

pytestmark = pytest.mark.docs


@dataclass
class Block:
    """One fenced block of a Markdown file."""

    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    annotations: list[tuple[str, dict[str, str], int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.doc.relative_to(ROOT).as_posix() if self.doc.is_relative_to(ROOT) else self.doc.name

    @property
    def where(self) -> str:
        return f"{self.name}:{self.line}"


@dataclass
class Case:
    """One test case: a block to run, a block or a command to skip, or a problem with the doc."""

    block: Block
    line: int
    kind: str  # "run", "skip" or "error"
    script: str = ""  # bash script to run (kind "run")
    files: dict[str, str] = field(default_factory=dict)  # written into the copy before the script
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.block.name}:{self.line}"


def parse_blocks(doc: Path) -> list[Block]:
    lines = doc.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks, lang = m.group(1), m.group(2), m.group(3).lower()
        j = i + 1
        while j < len(lines) and not re.match(rf"^\s*{ticks}`*\s*$", lines[j]):
            j += 1
        body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[i + 1:j]]
        annotations = []
        k = i - 1
        while k >= 0 and (a := ANNOTATION.match(lines[k])):
            annotations.insert(0, (a.group("action"), dict(OPTION.findall(a.group("action") + a.group("rest"))),
                                   k + 1))
            k -= 1
        blocks.append(Block(doc, i + 1, lang, "\n".join(body) + "\n", annotations))
        i = j + 1
    return blocks


def commands(text: str, first_line: int) -> list[tuple[int, str]]:
    """The logical lines of a shell block (backslash continuations joined), with their line numbers."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = first_line
    for n, raw in enumerate(text.rstrip("\n").split("\n"), start=first_line):
        if not pending:
            start = n
        pending.append(raw)
        if raw.rstrip().endswith("\\"):
            continue
        out.append((start, "\n".join(pending)))
        pending = []
    if pending:
        out.append((start, "\n".join(pending)))
    return out


def _python_case(block: Block, body: str) -> tuple[str, dict[str, str]]:
    first = body.split("\n", 1)[0]
    header = FILE_HEADER.match(first)
    if header:
        path = header.group("path")
        cmd = header.group("cmd")
        if cmd is None and Path(path).name.startswith("test_"):
            cmd = f".venv/bin/python -m pytest {shlex.quote(path)} -q -p no:cacheprovider"
        elif cmd is None:
            cmd = f".venv/bin/python {shlex.quote(path)}"
        return cmd.strip() + "\n", {path: body}
    # Written into the copy's top folder, so that it runs as a user's script saved there.
    path = f"doc_block_{block.doc.stem.replace('-', '_')}_{block.line}.py"
    return f".venv/bin/python {path}\n", {path: body}


def cases_of(block: Block) -> list[Case]:
    errors = []
    skip_all: str | None = None
    skip_commands: list[tuple[str, str, int]] = []
    for action, options, line in block.annotations:
        reason = options.get("reason", "").strip()
        if not reason:
            errors.append(f"annotation on line {line} has no reason=\"...\"")
        elif action == "skip":
            skip_all = reason
        elif action == "skip-command" and options.get("skip-command", "").strip():
            skip_commands.append((options["skip-command"], reason, line))
        else:
            errors.append(f"annotation on line {line}: unknown action '{action}' "
                          f"(use skip reason=\"…\" or skip-command=\"TEXT\" reason=\"…\")")
    if block.lang in DATA_LANGS:
        looks = [ln for ln in block.text.split("\n") if COMMAND_LIKE.match(ln)]
        if block.lang == "" and looks:
            errors.append(f"untagged block has command-like lines ({looks[0].strip()!r}): tag it ```sh "
                          "so that it runs, or ```text if it is output")
        if block.annotations:
            errors.append("annotation on a block that is not run (its language is "
                          f"'{block.lang or 'untagged'}')")
        return [Case(block, block.line, "error", reason="; ".join(errors))] if errors else []
    if block.lang not in SHELL_LANGS | PYTHON_LANGS:
        errors.append(f"unknown block language '{block.lang}': runnable are {sorted(SHELL_LANGS | PYTHON_LANGS)},"
                      f" not run are {sorted(DATA_LANGS - {''})}")
    if errors:
        return [Case(block, block.line, "error", reason="; ".join(errors))]
    if skip_all is not None:
        return [Case(block, block.line, "skip", reason=skip_all)]

    body = block.text
    if block.lang == "console":
        body = "".join(ln[2:] + "\n" for ln in body.split("\n") if ln.startswith("$ "))
    if block.lang in PYTHON_LANGS:
        if skip_commands:
            return [Case(block, block.line, "error", reason="skip-command is for shell blocks; "
                         "use skip reason=\"…\" for a python block")]
        script, files = _python_case(block, body)
        return [Case(block, block.line, "run", script=script, files=files)]

    kept: list[str] = []
    skipped: list[Case] = []
    used = {text: False for text, _, _ in skip_commands}
    for line, cmd in commands(body, block.line + 1):
        hit = next(((text, reason) for text, reason, _ in skip_commands
                    if not cmd.lstrip().startswith("#") and text in cmd), None)
        if hit is None:
            kept.append(cmd)
        else:
            used[hit[0]] = True
            skipped.append(Case(block, line, "skip", reason=f"{hit[1]}: {cmd.strip()}"))
    unused = [text for text, was in used.items() if not was]
    if unused:
        return [Case(block, block.line, "error",
                     reason=f"skip-command={unused[0]!r} matches no command of the block")]
    if not any(c.strip() and not c.lstrip().startswith("#") for c in kept):
        return [Case(block, block.line, "error",
                     reason="every command is skipped by skip-command: use skip reason=\"…\" for the block")]
    return [Case(block, block.line, "run", script="\n".join(kept) + "\n"), *skipped]


def all_cases() -> list[Case]:
    return [case for doc in DOCS for block in parse_blocks(doc) for case in cases_of(block)]


CASES = all_cases()


# -- running -----------------------------------------------------------------------------------------


def _venv() -> Path:
    """The virtual environment the docs mean by .venv."""
    if (ROOT / ".venv" / "bin" / "python").exists():
        return (ROOT / ".venv").resolve()
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix)
    pytest.fail("the docs' commands use .venv/bin: run the suite from the project's virtual environment "
                "(make venv, then .venv/bin/python -m pytest)")


def _tracked_files() -> list[Path]:
    """The files of a fresh clone, as they are in this working tree (edits included)."""
    done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=ROOT, capture_output=True, timeout=60)
    if done.returncode == 0:
        return [Path(p) for p in done.stdout.decode().split("\0") if p]
    skip = {".git", ".venv", "out", "keys", "library", "learned_skills", "build", "dist", "__pycache__"}
    return [p.relative_to(ROOT) for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)]


@dataclass
class Workspace:
    """A fresh copy of the repository for the blocks of one doc file, run in order."""

    root: Path
    scratch: Path
    done: dict[str, str] = field(default_factory=dict)  # case id -> "passed" or "failed"


class Workspaces:
    def __init__(self, base: Path, venv: Path) -> None:
        self.base = base
        self.venv = venv
        self.by_doc: dict[Path, Workspace] = {}

    def of(self, doc: Path) -> Workspace:
        if doc not in self.by_doc:
            name = doc.relative_to(ROOT).as_posix().replace("/", "_")
            root = self.base / name / "robocell"
            for rel in _tracked_files():
                src = ROOT / rel
                if not src.is_file() and not src.is_symlink():
                    continue  # deleted in the working tree
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, root / rel, follow_symlinks=False)  # keeps mtimes, so make sees .venv up to date
            (root / ".venv").symlink_to(self.venv, target_is_directory=True)
            scratch = self.base / name / "scratch"
            scratch.mkdir()
            self.by_doc[doc] = Workspace(root, scratch)
        return self.by_doc[doc]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> Workspaces:
    return Workspaces(tmp_path_factory.mktemp("docs"), _venv())


@dataclass
class Outcome:
    code: int | None  # None: timed out
    seconds: float
    output: str
    leftovers: bool  # processes of the block were still alive after it ended


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end_group(pgid: int) -> bool:
    """Stop every process the block left in its group; True if there were any."""
    if not _group_alive(pgid):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.1)
        if not _group_alive(pgid):
            return True
    return True


def _check_make_would_not_install(case: Case, ws: Workspace) -> None:
    """`make demo` in the copy must find .venv up to date: an install from the copy would re-point
    the shared editable install at a temporary folder."""
    if not re.search(r"(^|\n)\s*make\s", case.script):
        return
    done = subprocess.run(["make", "-q", "venv"], cwd=ws.root, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"{case.id} runs make, but `make -q venv` says .venv is out of date for this checkout "
                    f"(pyproject.toml or constraints.txt newer than its stamp): run `make venv` first; this test "
                    f"does not install into the shared .venv from a temporary copy")


def run_case(case: Case, ws: Workspace) -> Outcome:
    _check_make_would_not_install(case, ws)
    for rel, text in case.files.items():
        target = ws.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    tag = case.id.replace("/", "_").replace(":", "_")
    script = ws.scratch / f"{tag}.sh"
    script.write_text(case.script, encoding="utf-8")
    log = ws.scratch / f"{tag}.log"
    env = dict(os.environ)
    env["PATH"] = f"{ws.root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(ws.root / ".venv")
    env["PYTHONUNBUFFERED"] = "1"
    for var in ("PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS", "PYTHONPATH"):
        env.pop(var, None)
    started = time.monotonic()
    with log.open("wb") as out:
        # A file, not a pipe: a server started with & keeps its copy of stdout open.
        proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", str(script)], cwd=ws.root, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - started
        leftovers = _end_group(proc.pid)
        proc.wait()
    return Outcome(code, seconds, log.read_text(encoding="utf-8", errors="replace"), leftovers)


def _report(case: Case, outcome: Outcome, before: str = "") -> str:
    tail = "\n".join(outcome.output.rstrip("\n").split("\n")[-TAIL_LINES:])
    status = (f"timed out after {BLOCK_TIMEOUT_S:.0f} s" if outcome.code is None
              else f"exit code {outcome.code}")
    return (f"{before}{case.id}: {status} after {outcome.seconds:.1f} s\n"
            f"--- block (run in {case.block.doc.name}'s copy of the repository, with bash -e -o pipefail)\n"
            f"{case.script.rstrip()}\n--- last {TAIL_LINES} lines of its output\n{tail}")


def _earlier_runs(case: Case) -> Iterator[Case]:
    for other in CASES:
        if other is case:
            return
        if other.block.doc == case.block.doc and other.kind == "run":
            yield other


# pytest-timeout would end a long block from outside; the block's own hard timeout reports it better.
@pytest.mark.timeout(BLOCK_TIMEOUT_S * 3 + 120)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_doc_block_runs_as_pasted(case: Case, workspaces: Workspaces,
                                  record_property: pytest.RecordProperty) -> None:
    if case.kind == "error":
        pytest.fail(f"{case.id}: {case.reason}")
    if case.kind == "skip":
        pytest.skip(case.reason)
    ws = workspaces.of(case.block.doc)
    # Blocks build on the ones above them (keys generated, a demonstration recorded): when this
    # block is run alone (-k), the earlier blocks of its file run first.
    for earlier in _earlier_runs(case):
        if earlier.id not in ws.done:
            outcome = run_case(earlier, ws)
            ws.done[earlier.id] = "passed" if outcome.code == 0 else "failed"
    before = "".join(f"(the earlier block {cid} failed)\n" for cid, s in ws.done.items()
                     if s == "failed" and cid.startswith(case.id.split(":")[0] + ":"))
    outcome = run_case(case, ws)
    ws.done[case.id] = "passed" if outcome.code == 0 else "failed"
    record_property("wall_time_s", round(outcome.seconds, 1))
    print(f"{case.id}: {outcome.seconds:.1f} s, exit {outcome.code}, "
          f"{'left processes, killed' if outcome.leftovers else 'nothing left running'}")
    if outcome.code != 0:
        pytest.fail(_report(case, outcome, before), pytrace=False)


# -- the conventions themselves --------------------------------------------------------------------


def test_every_runnable_block_runs_or_is_skipped_with_a_reason() -> None:
    blocks = [b for doc in DOCS for b in parse_blocks(doc)]
    runnable = [b for b in blocks if b.lang in SHELL_LANGS | PYTHON_LANGS]
    assert len(DOCS) >= 2 and len(runnable) >= 20, \
        f"found only {len(runnable)} runnable blocks in {len(DOCS)} files: is the fence parser broken?"
    missing = [b.where for b in runnable
               if not any(c.kind in ("run", "skip") and c.line == b.line for c in cases_of(b))]
    assert not missing, f"blocks neither run nor skipped with a reason: {missing}"


def test_parser_reads_the_conventions(tmp_path: Path) -> None:
    text = "\n".join([
        "intro",
        '<!-- doc-test: skip-command="--gui" reason="needs a display" -->',
        "```sh",
        "R=.venv/bin/robocell",
        "$R eval x --cell c.yaml \\",
        "    --trials 3",
        "$R record --gui --out t.npz",
        "```",
        '<!-- doc-test: skip reason="needs a real UR arm" -->',
        "```bash",
        "robocell serve --driver ur_rtde",
        "```",
        "```python",
        "# my_task.py — run with: robocell run my_task.py --cell examples/cells/tabletop.yaml",
        "def main(cell): ...",
        "```",
        "```",
        "robocell run forgot_the_tag.yaml",
        "```",
        "```yaml",
        "arms: []",
        "```",
    ])
    sample = tmp_path / "sample.md"
    sample.write_text(text, encoding="utf-8")
    blocks = parse_blocks(sample)
    assert [(b.line, b.lang) for b in blocks] == [(3, "sh"), (10, "bash"), (13, "python"), (17, ""), (20, "yaml")]
    assert blocks[0].annotations == [("skip-command", {"skip-command": "--gui", "reason": "needs a display"}, 2)]
    assert blocks[1].annotations == [("skip", {"reason": "needs a real UR arm"}, 9)]
    assert commands(blocks[0].text, 4) == [(4, "R=.venv/bin/robocell"),
                                           (5, "$R eval x --cell c.yaml \\\n    --trials 3"),
                                           (7, "$R record --gui --out t.npz")]
    run, skipped = cases_of(blocks[0])
    assert run.kind == "run" and "--gui" not in run.script and "--trials 3" in run.script
    assert (skipped.kind, skipped.line) == ("skip", 7) and skipped.reason.startswith("needs a display: ")
    assert [(c.kind, c.reason) for c in cases_of(blocks[1])] == [("skip", "needs a real UR arm")]
    (task,) = cases_of(blocks[2])
    assert task.script == "robocell run my_task.py --cell examples/cells/tabletop.yaml\n"
    assert list(task.files) == ["my_task.py"]
    (untagged,) = cases_of(blocks[3])
    assert untagged.kind == "error" and "tag it ```sh" in untagged.reason
    assert cases_of(blocks[4]) == []
    blocks[1].annotations = [("skip", {}, 8)]
    assert cases_of(blocks[1])[0].kind == "error"  # a skip needs a reason
    blocks[0].annotations = [("skip-command", {"skip-command": "--nothing", "reason": "r"}, 1)]
    assert "matches no command" in cases_of(blocks[0])[0].reason
