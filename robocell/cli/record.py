"""``robocell record``: record a demonstration to a ``.npz`` file.

Three ways to demonstrate:

- ``--script FILE.py`` (any backend): the file's ``demonstrate(cell)`` (or
  ``main(cell)``) moves the arm through the public API while it is recorded;
- ``--backend tcp://...`` without a script: passive recording while the
  operator free-drives the arm (or another client moves it); no lease is
  taken; it stops at ``--duration`` or Ctrl-C, and the file is still written;
- ``--gui`` in simulation without a script: teleoperation with sliders.
"""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from robocell.cli.options import CellOpt, console
from robocell.errors import ConfigError

if TYPE_CHECKING:
    from robocell.core.cell import Cell
    from robocell.recording.demonstration import Demonstration
    from robocell.recording.recorder import Recording

POLL = 0.1  # s between checks that a passive recording's sampler is still alive


def _load_script(script: Path) -> Callable[[Any], object]:
    from robocell.skills.registry import load_module_from_path

    if not script.is_file():
        raise ConfigError(f"script '{script}' does not exist; give a Python file defining demonstrate(cell)")
    if script.suffix != ".py":
        raise ConfigError(f"script '{script}' must be a Python file (.py) defining demonstrate(cell)")
    module = load_module_from_path(script, prefix="robocell_demo_scripts")
    fn = getattr(module, "demonstrate", None) or getattr(module, "main", None)
    if not callable(fn):
        raise ConfigError(f"script '{script}' must define a function demonstrate(cell) (or main(cell))")
    return fn


def check_options(backend: str, out: Path, script: Optional[Path], rate: float, duration: Optional[float],
                  gui: bool, force: bool = False) -> str:
    """Check the options before anything starts; returns the recording's source label."""
    from robocell.core.outputs import check_output
    from robocell.recording.recorder import check_rate
    from robocell.sim.gui import check_display

    check_output(out, "--out", force=force, suffix=".npz", what="a demonstration")
    check_rate(rate)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ConfigError(f"--duration {duration} s must be a positive number of seconds")
    if gui and backend == "sim" and script is not None:
        check_display()
    if script is not None:
        if not script.is_file():
            raise ConfigError(f"script '{script}' does not exist; give a Python file defining demonstrate(cell)")
        return f"script:{script}"
    if backend == "sim":
        if not gui:
            raise ConfigError("in simulation nobody moves the arm by hand: give --script FILE.py (a scripted "
                              "demonstration) or --gui (teleoperation with sliders)")
        check_display()
        return "teleop"
    if gui:
        raise ConfigError(f"--gui teleoperates the simulator; the arm at {backend} is moved by hand "
                          "(free-drive) while `robocell record` observes; drop --gui")
    return "free-drive"


def record_command(*, cell: Path, backend: str, keys: Optional[Path], out: Path, script: Optional[Path],
                   rate: float, duration: Optional[float], gui: bool, seed: Optional[int], arm: Optional[str],
                   console: Console, force: bool = False) -> None:
    from robocell.core.cell import Cell
    from robocell.recording.recorder import record

    source = check_options(backend, out, script, rate, duration, gui, force)
    demo_fn = _load_script(script) if script is not None else None
    options: dict[str, object] = {}
    if backend == "sim":
        options = {"seed": seed, "gui": gui, "realtime": gui}
    else:
        if seed is not None:
            options["seed"] = seed  # the remote backend explains why a seed makes no sense there
        if keys is not None:
            options["keys"] = str(keys)
        if demo_fn is None:
            options["observe"] = True  # free-drive: watch only, never take the lease
    with _StopOnSignal() as stop, Cell.load(cell, backend, **options) as c:
        rec = record(c, arm=arm, rate=rate, source=source, cell_file=cell)
        interrupted: str | None = None
        with rec:
            try:
                interrupted = _demonstrate(c, rec, source, demo_fn, duration, arm, console)
            except (KeyboardInterrupt, _Stopped):
                # Ctrl-C or SIGTERM ends a script or teleoperation; what was recorded is kept
                interrupted = stop.requested or "Ctrl-C"
        stop.disarm()  # a second signal while saving must not cost the recording
        demo = rec.demonstration()
        path = demo.save(out)
    _report(console, demo, rec, path, interrupted)


class _Stopped(BaseException):
    """Raised in the main thread by SIGTERM while a script or teleoperation runs (like KeyboardInterrupt)."""


class _StopOnSignal:
    """For the whole recording: SIGINT and SIGTERM stop a script or teleoperation, and the recording is saved.

    Without it, SIGTERM (``kill``, a supervisor, a CI timeout) ended the process on the spot and
    the file was never written.  SIGINT is installed too, for the case where it was inherited
    as ignored (``robocell record ... &`` in a non-interactive shell).  Once disarmed
    (the demonstration is over, the save starts) a signal is only noted: the save finishes.
    A passive recording's own :class:`_StopOnCtrlC` takes over while it waits.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None
        self.armed = True
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        first = self.requested is None
        self.requested = self.requested or ("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)
        if self.armed and first:
            raise KeyboardInterrupt if signum == signal.SIGINT else _Stopped(self.requested)

    def disarm(self) -> None:
        self.armed = False

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        _restore(self._previous)


class _StopOnCtrlC:
    """While a passive recording waits, SIGINT (Ctrl-C, ``kill -INT``) or SIGTERM (``kill``, a
    supervisor) asks it to stop and save: a flag, not an exception.

    Installed even when SIGINT was inherited as *ignored*: a non-interactive shell starts
    ``robocell record ... &`` that way, and Python then installs no KeyboardInterrupt handler,
    so Ctrl-C was silently dropped and the recorder ran on until killed, saving nothing.
    A signal is this recording's only way to stop and still save, so it is never ignored here.
    The handler only sets a flag that the wait loop polls, so no exception can land inside
    the sampler or the save.  The previous handlers are restored once the wait is over.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None  # what asked to stop ("Ctrl-C", "SIGTERM") once it did
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name

    def __enter__(self) -> _StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        _restore(self._previous)


def _restore(previous_handlers: dict[int, Any]) -> None:
    for sig, previous in previous_handlers.items():
        if previous is None:  # a handler set outside Python, which cannot be restored: Python's default
            previous = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        signal.signal(sig, previous)


def _demonstrate(c: Cell, rec: Recording, source: str, demo_fn: Callable[[Any], object] | None,
                 duration: float | None, arm: str | None, console: Console) -> str | None:
    """Run the demonstration; what stopped a passive recording early ("Ctrl-C", "SIGTERM"), if anything."""
    if demo_fn is not None:
        # the line a supervisor (or a test) can wait for: from here on a signal saves what was recorded
        console.print(f"recording at {rec.rate:g} Hz while {source.removeprefix('script:')} runs; "
                      "Ctrl-C or SIGTERM stops and saves")
        demo_fn(c)
        return None
    if source == "teleop":
        from robocell.sim.teleop import SliderSource, teleoperate

        world = c.backend.world  # type: ignore[attr-defined]
        a = c.arm(arm)
        src = SliderSource(world, a.state().tcp, a.safety.workspace_min, a.safety.workspace_max)
        console.print("teleoperation: move the sliders; 'gripper open/close' toggles the gripper; "
                      "'finish recording' ends")
        teleoperate(c, src, arm=arm, duration=duration)
        return None
    with _StopOnCtrlC() as ctrl_c:  # before the line that tells the operator Ctrl-C stops
        console.print(f"recording {c.address} at {rec.rate:g} Hz; free-drive the arm; "
                      + (f"stops after {duration:g} s" if duration else "Ctrl-C stops"))
        idle = threading.Event()  # never set: its wait is a sleep that a signal handler runs during
        waited = 0.0
        while (duration is None or waited < duration) and not ctrl_c.requested:
            step = POLL if duration is None else min(POLL, duration - waited)
            idle.wait(step)
            waited += step
            sampler = rec.sampler
            if getattr(sampler, "error", None) is not None:
                break  # the recording's stop raises it
        return ctrl_c.requested


def _report(console: Console, demo: Demonstration, rec: Recording, path: Path, interrupted: str | None) -> None:
    lost = rec.lost_samples
    console.print(f"samples: {demo.n_samples}")
    console.print(f"achieved rate: {demo.achieved_rate:.1f} Hz (asked {rec.rate:g} Hz)")
    console.print(f"lost samples: {lost} (periods of {1000 / rec.sample_rate:.1f} ms without a sample)")
    console.print(f"duration: {demo.duration:.2f} s" + (f" (stopped by {interrupted})" if interrupted else ""))
    if demo.events:
        console.print("events: " + ", ".join(f"{e.kind} at {e.t:.2f} s" for e in demo.events))
    else:
        console.print("events: none (the gripper did not open or close)")
    console.print(f"[green]written[/]: {path}")


def register(app: typer.Typer) -> None:
    @app.command("record")
    def record_cmd(
        cell: CellOpt,
        out: Annotated[Path, typer.Option(help="Demonstration file to write (.npz).")],
        backend: Annotated[str, typer.Option(help="sim, or tcp://host:port for a remote arm.")] = "sim",
        keys: Annotated[Optional[Path], typer.Option(help="Keys folder for a CURVE-secured remote arm.")] = None,
        script: Annotated[Optional[Path], typer.Option(
            help="Python file defining demonstrate(cell), run while recording.")] = None,
        rate: Annotated[float, typer.Option(help="Samples per second (Hz), at most 1000.")] = 100.0,
        duration: Annotated[Optional[float], typer.Option(
            help="Stop after this many seconds (free-drive, teleoperation).")] = None,
        gui: Annotated[bool, typer.Option(help="Simulation: show the window; without --script, teleoperate.")] = False,
        seed: Annotated[Optional[int], typer.Option(help="Simulation: randomise object poses with this seed.")] = None,
        arm: Annotated[Optional[str], typer.Option(help="Arm to record when the cell has several.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    ) -> None:
        """Record a demonstration (script, GUI teleoperation or free-drive) to a .npz file."""
        record_command(cell=cell, backend=backend, keys=keys, out=out, script=script, rate=rate,
                       duration=duration, gui=gui, seed=seed, arm=arm, console=console, force=force)
