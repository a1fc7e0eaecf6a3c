"""The ``robocell`` command line.

User mistakes (bad files, unknown names, unreachable poses, limits) end with
a one-paragraph message and exit code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from robocell.cli import doctor, learn, record, reset, serve, teach, top
from robocell.cli.options import CellOpt, SkillsOpt, console, err_console
from robocell.errors import RobocellError
from robocell.core.capabilities import sim_time
from robocell.core.outputs import check_output

app = typer.Typer(
    name="robocell",
    help="Program robot cells: run skill programs in simulation or on hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cell_app = typer.Typer(help="Cell files: validate and describe.", no_args_is_help=True)
app.add_typer(cell_app, name="cell")


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("robocell")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from robocell import __version__ as text
        print(f"robocell {text}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print robocell's version and exit.")] = False,
) -> None:
    """Program robot cells: run skill programs in simulation or on hardware."""

DEMO_CELL = Path("examples/cells/tabletop.yaml")
DEMO_PICTURE = Path("out/demo.png")


@cell_app.command("check")
def cell_check(cell: Annotated[Path, typer.Argument(help="Cell file (YAML).")]) -> None:
    """Validate a cell file and print a summary."""
    from robocell.cellfile.spec import describe, load_cell_spec

    spec = load_cell_spec(cell)
    # kinematics too: tightened limits must sit inside the URDF's, and the URDF must parse
    from robocell.motion.kinematics_setup import arm_parts

    for arm in spec.arms:
        arm_parts(arm)
    console.print(describe(spec))
    console.print(f"[green]ok[/]: {cell} is a valid cell file")


@app.command()
def skills(skills: SkillsOpt = None) -> None:
    """List the available skills with their signatures and documentation."""
    from robocell.run.runner import load_registry

    for spec in load_registry(skills or []):
        console.print(f"[bold]{spec.signature()}[/]")
        for line in spec.doc.splitlines():
            console.print(f"    {line}")
        console.print()


ForceOpt = Annotated[bool, typer.Option("--force", help="Replace output files that exist already.")]


@app.command()
def run(
    target: Annotated[list[str], typer.Argument(
        help="PROGRAM.yaml, SCRIPT.py (defining main(cell)), or a skill with key=value arguments: "
             "pick_and_place object=red_block target=bin",
        metavar="PROGRAM_OR_SKILL [KEY=VALUE...]")],
    cell: CellOpt,
    backend: Annotated[str, typer.Option(help="sim, or tcp://host:port for a remote arm.")] = "sim",
    gui: Annotated[bool, typer.Option(help="Show the PyBullet window (real-time).")] = False,
    record: Annotated[Optional[Path], typer.Option(help="Write an animation of the run (.gif).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Randomise object poses with this seed.")] = None,
    arm: Annotated[Optional[str], typer.Option(help="Arm to use when the cell has several.")] = None,
    picture: Annotated[Optional[Path], typer.Option(help="Write a PNG of the final scene.")] = None,
    skills: SkillsOpt = None,
    keys: Annotated[Optional[Path], typer.Option(help="Keys folder for a CURVE-secured remote arm.")] = None,
    force: ForceOpt = False,
    connect_timeout: Annotated[Optional[float], typer.Option(
        help="Seconds a remote backend waits for a server that is still starting (default 30).")] = None,
) -> None:
    """Run a program, a skill script or one skill call on a cell."""
    from robocell.core.cell import Cell
    from robocell.cli.progress import StepPrinter
    from robocell.run.runner import load_registry, run_target
    from robocell.eval.trial import EvalTarget

    what = EvalTarget.parse(target)  # the same words as `robocell eval`
    if record is not None:
        check_output(record, "--record", force=force, suffix=".gif", what="an animation")
    if picture is not None:
        check_output(picture, "--picture", force=force)
    if gui and backend == "sim":
        from robocell.sim.gui import check_display

        check_display()  # before the work: without an X server PyBullet would exit(1) from C
    registry = load_registry(skills or [])
    program = what.program()
    progress = StepPrinter(console, len(program.steps) if program is not None else None)
    options: dict[str, object] = {"seed": seed, "gui": gui, "realtime": gui, "record": record}
    if backend != "sim":
        # only what the user actually asked for, so a simulator-only option gets a clear error
        options = {k: v for k, v in options.items() if v}
        if keys is not None:
            options["keys"] = str(keys)
    if connect_timeout is not None:
        if backend == "sim":
            raise RobocellError("--connect-timeout applies to a remote arm (--backend tcp://...); "
                                "the simulator has no server to wait for")
        options["connect_timeout"] = connect_timeout
    with Cell.load(cell, backend, **options) as c:
        report = run_target(c, what, registry, arm=arm, on_step=progress.program_step,
                            on_call=progress.skill_call)
        if picture is not None:
            from robocell.core.images import save_png

            save_png(c.render(), picture)
            console.print(f"picture of the final scene: {picture}")
    console.print(f"[green]done[/]: {what.text()} ran in {report.wall_time:.2f} s")
    if record is not None:
        console.print(f"animation: {record}")


@app.command("eval")
def eval_cmd(
    target: Annotated[list[str], typer.Argument(
        help="PROGRAM.yaml, SCRIPT.py, or a skill with key=value arguments: pick_and_place object=red_block target=bin",
        metavar="PROGRAM_OR_SKILL [KEY=VALUE...]")],
    cell: CellOpt,
    trials: Annotated[int, typer.Option(min=1, help="Number of randomised trials.")] = 20,
    workers: Annotated[int, typer.Option(min=1, help="Trials run in parallel (processes or Ray actors).")] = 1,
    engine: Annotated[str, typer.Option(help="local (process pool on this machine) or ray.")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (ray://host:10001 or auto); "
                                                        "without it --engine ray starts a local one.")] = None,
    seed: Annotated[int, typer.Option(help="Seed from which every trial's seed is derived.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
    junit: Annotated[Optional[Path], typer.Option(help="Write JUnit XML (one testcase per trial).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write an HTML report with pictures to this folder.")] = None,
    trial: Annotated[Optional[int], typer.Option(help="Replay trial K alone, in this process.")] = None,
    gui: Annotated[bool, typer.Option(help="With --trial: show the PyBullet window.")] = False,
    record: Annotated[Optional[Path], typer.Option(help="With --trial: write an animation (.gif).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds of wall time per trial before it counts as hung.")] = 300.0,
    randomize: Annotated[Optional[list[str]], typer.Option(
        help="Override the cell file's randomization: friction=0.8:1.2, sensor_noise.object_position=0.002, "
             "remote.latency=0.01 (repeatable).")] = None,
    backend: Annotated[str, typer.Option(help="sim, or tcp://host:port for a remote arm.")] = "sim",
    min_success: Annotated[Optional[float], typer.Option(
        help="Exit with code 1 when the success rate is below this (0..1), for CI.")] = None,
    animate: Annotated[int, typer.Option(help="Failed trials replayed as GIFs in the --report.")] = 3,
    shard: Annotated[Optional[str], typer.Option(
        help="I/N: run only trials K with K % N == I, to split one evaluation over N drivers or CI jobs.")] = None,
    skills: SkillsOpt = None,
    force: ForceOpt = False,
) -> None:
    """Run a program or skill on N randomised cells, in parallel, and report the success rate."""
    from robocell.cli.eval import eval_command

    code = eval_command(
        target=target, cell=cell, trials=trials, workers=workers, engine=engine, address=address, seed=seed,
        as_json=as_json, junit=junit, report=report, trial=trial, gui=gui, record=record, timeout=timeout,
        randomize=randomize or [], backend=backend, min_success=min_success, animate=animate,
        skills=skills or [], shard=shard, force=force, console=console, err_console=err_console,
    )
    if code:
        raise typer.Exit(code)


@app.command()
def demo(
    cell: CellOpt = DEMO_CELL,
    gui: Annotated[bool, typer.Option(help="Show the PyBullet window (real-time).")] = False,
    record: Annotated[Optional[Path], typer.Option(help="Write an animation (.gif).")] = None,
    picture: Annotated[Optional[Path], typer.Option(
        help=f"PNG of the final scene (default {DEMO_PICTURE}, replaced on every run).")] = None,
    force: ForceOpt = False,
) -> None:
    """Put every block of the tabletop cell in the bin, then go home; writes a picture."""
    from robocell.core.cell import Cell
    from robocell.core.images import save_png
    from robocell.skills import SkillContext

    if record is not None:
        check_output(record, "--record", force=force, suffix=".gif", what="an animation")
    # the default picture is robocell's own scratch file: replaced; a picture the user names is not
    picture = check_output(picture or DEMO_PICTURE, "--picture", force=force or picture is None)

    if gui:
        from robocell.sim.gui import check_display

        check_display()
    options: dict[str, object] = {"gui": gui, "realtime": gui, "record": record}
    with Cell.load(cell, "sim", **options) as c:
        bin_name = next((f.name for f in c.spec.fixtures if f.type == "bin"), None)
        if bin_name is None:
            raise RobocellError(f"the demo needs a cell with a bin; {cell} has none")
        ctx = SkillContext.create(c, log=lambda s: None)
        t0 = sim_time(c.backend)
        for obj in c.objects:
            console.print(f"pick_and_place {obj} -> {bin_name} ...", end=" ")
            ctx.call("pick_and_place", object=obj, target=bin_name)
            p = c.object_pose(obj).t
            console.print(f"[green]ok[/], now at ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) m")
        console.print("home ...", end=" ")
        ctx.call("home")
        console.print("[green]ok[/]")
        in_bin = [o for o in c.objects if c.spec.fixture(bin_name).contains(c.object_pose(o).t)]
        sim_t = sim_time(c.backend) - t0
        save_png(c.render(), picture)
    console.print(
        f"[green]demo done[/]: {len(in_bin)}/{len(c.objects)} objects in '{bin_name}' "
        f"after {sim_t:.1f} s of simulated time; picture: {picture}"
    )
    if record is not None:
        console.print(f"animation: {record}")


#: The command groups, each a module of this package with ``register(app)``: the one way a command joins the CLI.
COMMAND_GROUPS = (serve, teach, record, learn, reset, doctor, top)
for _group in COMMAND_GROUPS:
    _group.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``robocell`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        # standalone mode: usage errors print the usage and exit with code 2 by themselves
        app(args=args, prog_name="robocell")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RobocellError as exc:
        if debug:
            traceback.print_exc()
        from rich.markup import escape

        # escaped: messages quote values such as "[lo, hi]" that rich would read as markup
        err_console.print(f"[red]error[/] ({type(exc).__name__}): {escape(str(exc))}")
        if not debug:
            err_console.print("[dim](run with --debug for the traceback)[/]")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
