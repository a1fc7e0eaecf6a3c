"""``robocell learn``: turn demonstrations into a named skill in a skills folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from robocell.errors import DemoError, SkillError

DEFAULT_LIBRARY = Path("learned_skills")


def learn_cmd(
    demos: Annotated[list[Path], typer.Argument(help="Demonstration files (.npz) from `robocell record`.")],
    name: Annotated[str, typer.Option(help="Name of the new skill (a Python identifier).")],
    cell: Annotated[Optional[Path], typer.Option("--cell", "-c", help="Cell file (default: the one the first "
                                                                       "demonstration was recorded on).")] = None,
    description: Annotated[str, typer.Option(help="What the skill does, in the operator's words (its "
                                                  "documentation, and a phrasing for `robocell teach`).")] = "",
    library: Annotated[Path, typer.Option(help="Skills folder to save NAME.skill.json into "
                                               "(use it with --skills).")] = DEFAULT_LIBRARY,
    method: Annotated[Optional[str], typer.Option(help="dmp (one demonstration) or promp (several); "
                                                       "default: by the number of demonstrations.")] = None,
    object: Annotated[Optional[str], typer.Option(help="The object picked (default: the one nearest the "
                                                       "gripper when it closed).")] = None,
    target: Annotated[Optional[str], typer.Option(help="Where it was put (default: the fixture, tray slot "
                                                       "or object it came to rest in or on).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG of the demonstration, its reproduction "
                                                      "and a generalisation.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing skill file of the same name, and the --plot "
                                             "file.")] = False,
) -> None:
    """Learn a pick-and-place skill from one or more demonstrations."""
    from robocell.cellfile.spec import load_cell_spec
    from robocell.core.outputs import check_output
    from robocell.skills import SkillRegistry
    from robocell.skills.learning import learn, load_demos
    from robocell.skills.learning.model import SUFFIX

    console = Console(highlight=False, soft_wrap=True)
    loaded = load_demos(list(demos))
    cell_file = cell if cell is not None else _recorded_cell(loaded[0].provenance.cell_file, demos[0])
    spec = load_cell_spec(cell_file)
    if name in SkillRegistry.default():
        raise SkillError(f"--name {name}: a built-in skill has that name; choose another")
    # both outputs before the learning: a name taken or a folder not writable must not cost the work
    check_output(library / f"{name}{SUFFIX}", "--library", force=force)
    if plot is not None:
        check_output(plot, "--plot", force=force)
    result = learn(loaded, spec, name=name, description=description, method=method, object=object,
                   target=target, files=[str(d) for d in demos])
    path = result.skill.save(library)
    task = result.tasks[0]
    console.print(f"learned [bold]{name}[/]({task.object} -> {task.target}, a {task.target_kind}) from "
                  f"{len(loaded)} demonstration(s) with {result.skill.method}")
    for seg in task.segments:
        console.print(f"  {seg.name:<9} {seg.t[-1]:5.2f} s, {len(seg.t)} samples, ends relative to the {seg.frame}")
    per = ", ".join(f"{r * 1000:.1f}" for r in result.fit_rms_per_demo)
    console.print(f"  fit error: {result.fit_rms * 1000:.2f} mm RMS ({per} per demonstration), "
                  f"{result.fit_max * 1000:.2f} mm max; learning took {result.learn_time * 1000:.0f} ms")
    if result.skill.method == "promp":
        mean = ", ".join(f"{r * 1000:.1f}" for r in result.mean_rms_per_demo)
        console.print(f"  mean path: {mean} mm RMS from each demonstration (how far they lie from their average)")
    console.print(f"[green]saved[/] {path}; run it with --skills {library}, e.g.\n"
                  f"  robocell eval {name} object={task.object} target={task.target} --cell {cell_file} "
                  f"--skills {library}")
    if plot is not None:
        from robocell.skills.learning.plot import plot as draw

        console.print(f"plot: {draw(result, spec, plot)}")


def _recorded_cell(recorded: str, demo: Path) -> Path:
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    raise DemoError(f"give --cell: the cell file '{recorded or '(none)'}' that '{demo}' was recorded on is "
                    "not here")


def register(app: typer.Typer) -> None:
    app.command("learn")(learn_cmd)
