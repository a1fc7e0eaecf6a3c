"""``robocell eval`` on the console: progress bar, summary table, JSON, JUnit and report files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from robocell.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from robocell.eval.report import ScaleReport
    from robocell.eval.run import EvalPlan
    from robocell.eval.evaluate import TrialResult

MAX_LISTED = 20  # failed trials listed on the console (all of them are in JSON, JUnit and HTML)


def eval_command(*, target: list[str], cell: Path, trials: int, workers: int, engine: str, address: str | None,
                 seed: int, as_json: bool, junit: Path | None, report: Path | None, trial: int | None, gui: bool,
                 record: Path | None, timeout: float, randomize: list[str], backend: str,
                 min_success: float | None, animate: int, skills: list[Path], shard: str | None, console: Console,
                 err_console: Console, force: bool = False) -> int:
    """Run the command; returns the exit code (0, or 1 for a failed replay or a success rate below the bar)."""
    from robocell.eval.run import EvalPlan
    from robocell.sim.gui import check_display
    from robocell.eval.trial import EvalTarget

    if min_success is not None and not 0.0 <= min_success <= 1.0:
        raise ConfigError(f"--min-success {min_success}: must be a fraction between 0 and 1 (e.g. 0.99)")
    if (gui or record) and trial is None:
        raise ConfigError("--gui and --record watch one trial: add --trial K (K from the list of failed trials)")
    if gui and backend == "sim":
        check_display()  # here, not in the trial: there a missing display would read as a failed trial
    if not cell.is_file():
        raise ConfigError(f"cell file '{cell}' does not exist")
    _check_outputs(junit, report, record, force)
    plan = EvalPlan(EvalTarget.parse(target), str(cell), trials, seed, workers, engine, address, timeout,
                    tuple(str(d) for d in skills), tuple(randomize), backend,
                    str(report) if report is not None else None, animate, _shard(shard))
    if trial is not None:
        return _replay(plan, trial, gui, record, console)
    result = _run(plan, as_json, err_console)
    if junit is not None:
        result.write_junit(junit)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_summary(result, console)
        if junit is not None:
            console.print(f"JUnit XML: {junit}")
        if report is not None:
            console.print(f"report: {report / 'index.html'}")
    if min_success is not None and result.success_rate < min_success:
        if not as_json:
            console.print(f"[red]success rate {result.success_rate:.1%} is below --min-success {min_success:.1%}[/]")
        return 1
    return 0


def _check_outputs(junit: Path | None, report: Path | None, record: Path | None, force: bool) -> None:
    """Every output path, before the first trial: a typo must not cost a whole evaluation."""
    from robocell.core.outputs import check_output

    if junit is not None:
        check_output(junit, "--junit", force=force)
    if report is not None:
        check_output(report, "--report", force=force, kind="folder")
    if record is not None:
        check_output(record, "--record", force=force, suffix=".gif", what="an animation")


def _shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (0, 1)
    i, sep, n = text.partition("/")
    if not sep or not i.strip().isdigit() or not n.strip().isdigit():
        raise ConfigError(f"--shard {text!r}: write I/N, e.g. 0/4 for the first of four drivers")
    return int(i), int(n)


def _run(plan: EvalPlan, quiet: bool, err_console: Console) -> ScaleReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from robocell.eval.run import prepare, run_plan

    jobs = prepare(plan)  # mistakes end here, before the progress bar
    if quiet:
        return run_plan(plan, None, jobs)
    counts = {"ok": 0, "done": 0}
    columns = (TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task("eval", total=len(jobs), rate="success -")

        def on_result(t: TrialResult) -> None:
            counts["done"] += 1
            counts["ok"] += t.success
            progress.update(task, advance=1, rate=f"success {counts['ok'] / counts['done']:.1%}")
            if not t.success:
                mark = "[red]FAIL[/]" if t.status == "failed" else "[magenta]ERROR[/]"
                progress.console.print(f"trial {t.trial} seed {t.seed} {mark}: {t.error}")

        return run_plan(plan, on_result, jobs)


def _print_summary(r: ScaleReport, console: Console) -> None:
    console.print(r.table())
    data = r.to_json()
    console.print(
        f"success {data['successes']}/{data['trials']} = {r.success_rate:.1%}; "
        f"{data['mean_wall_time_s']:.2f} s wall and {data['mean_sim_time_s']:.1f} s simulated per trial; "
        f"{r.trials_per_minute:.0f} trials/min on {r.workers} {r.engine} worker(s)"
    )
    for t in r.failures[:MAX_LISTED]:
        where = f" at step {t.step}" if t.step else ""
        console.print(f"  [red]{t.status}[/] trial {t.trial} seed {t.seed}{where}: {t.error}")
        console.print(f"    replay: {r.replay_command(t)}")
    if len(r.failures) > MAX_LISTED:
        console.print(f"  ... and {len(r.failures) - MAX_LISTED} more (see --json, --junit or --report)")


def _replay(plan: EvalPlan, trial: int, gui: bool, record: Path | None, console: Console) -> int:
    from robocell.eval.run import replay_trial

    t = replay_trial(plan, trial, gui=gui, record=str(record) if record else None)
    if t.success:
        console.print(f"[green]ok[/]: trial {trial} seed {t.seed} succeeded in {t.wall_time:.2f} s "
                      f"({t.sim_time:.1f} s simulated)")
    else:
        where = f" at step {t.step}" if t.step else ""
        console.print(f"[red]{t.status}[/]: trial {trial} seed {t.seed}{where}: {t.error}")
    if t.conditions:
        console.print(f"randomised: {json.dumps(t.conditions)}")
    if record is not None:
        console.print(f"animation: {record}")
    return 0 if t.success else 1
