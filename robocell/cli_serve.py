"""``robocell serve`` and ``robocell keys``: the hardware side of the command line."""

from __future__ import annotations

import gc
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from robocell.errors import ConfigError
from robocell.outputs import check_output

keys_app = typer.Typer(help="CURVE keys for `robocell serve` and its clients.", no_args_is_help=True)


def _parse_options(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--driver-option {item!r} must look like NAME=VALUE (e.g. host=192.168.1.10)")
        parsed: object = value
        for conv in (int, float):
            try:
                parsed = conv(value)
                break
            except ValueError:
                continue
        if value.lower() in ("true", "false"):
            parsed = value.lower() == "true"
        out[key.replace("-", "_")] = parsed
    return out


def serve(
    cell: Annotated[Path, typer.Option("--cell", "-c", help="Cell file (YAML) describing the arm.")],
    arm: Annotated[Optional[str], typer.Option(help="Arm of the cell to serve (default: the only one).")] = None,
    driver: Annotated[str, typer.Option(help="Driver: sim, ur_rtde, or a registered one.")] = "sim",
    bind: Annotated[str, typer.Option(help="Command endpoint (the state stream uses port + 1).")] = "tcp://127.0.0.1:5555",
    state_bind: Annotated[Optional[str], typer.Option(help="State endpoint (default: command port + 1).")] = None,
    state_rate: Annotated[float, typer.Option(help="State messages per second (1-1000).")] = 250.0,
    watchdog: Annotated[float, typer.Option(help=(
        "Clients that keep the lease with application messages (no liveness connection): stop the arm when the "
        "controlling client sends nothing for this long while a motion or servo stream runs (s, 0.005-5)."))] = 0.05,
    liveness: Annotated[float, typer.Option(help=(
        "Clients with a liveness connection: stop the arm when that connection closes, or nothing (no ZeroMQ "
        "heartbeat, no command) arrives from the client for this long, while a motion or servo stream runs "
        "(s, 0.01-5)."))] = 0.05,
    servo_timeout: Annotated[float, typer.Option(help=(
        "A servo stream with no new setpoint for this long (or twice its dt, if longer) ends: the arm settles on "
        "the last setpoint and the mode is idle again, with no fault (s, 0.01-10)."))] = 0.2,
    lease_timeout: Annotated[float, typer.Option(help=(
        "A controlling client without a liveness connection that is silent this long loses the lease (s)."))] = 1.0,
    keys: Annotated[Optional[Path], typer.Option(help="Keys folder from `robocell keys generate` (CURVE on).")] = None,
    audit: Annotated[Optional[Path], typer.Option(help="Append-only audit log (JSON lines).")] = None,
    insecure: Annotated[bool, typer.Option(help="Allow a non-loopback bind without keys.")] = False,
    driver_option: Annotated[Optional[list[str]], typer.Option(help="NAME=VALUE passed to the driver (repeatable).")] = None,
) -> None:
    """Serve one arm of a cell over ZeroMQ, with a driver (the simulator or a real arm)."""
    from robocell.cellfile import load_cell_spec
    from robocell.hardware.driver import create_driver
    from robocell.hardware.liveness import check_deadline
    from robocell.hardware.security import check_bind, check_free, load_server_keys
    from robocell.hardware.server import ArmServer
    from robocell.hardware.spawn import ready_line

    spec = load_cell_spec(cell)
    name = arm or (spec.arms[0].name if len(spec.arms) == 1 else None)
    if name is None:
        raise ConfigError(f"the cell has several arms ({', '.join(a.name for a in spec.arms)}); choose one with --arm")
    server_keys = load_server_keys(keys) if keys else None
    check_bind(bind, server_keys, insecure)  # before the driver connects to anything
    if audit is not None:
        # appended to, never replaced: an audit log that exists is the point, so no --force
        check_output(audit, "--audit", kind="append")
    check_free(bind, state_bind)
    check_deadline(liveness, "--liveness")  # deadlines too: before the driver connects to anything
    # the control thread must get the GIL back within a fraction of its 1 ms period
    sys.setswitchinterval(0.0002)
    drv = create_driver(driver, spec, name, **_parse_options(driver_option or []))
    try:
        server = ArmServer(spec, name, drv, bind=bind, state_bind=state_bind, state_rate=state_rate,
                           watchdog=watchdog, lease_timeout=lease_timeout, keys=server_keys, audit=audit,
                           insecure=insecure, liveness=liveness, servo_timeout=servo_timeout)
    except BaseException:
        drv.close()
        raise
    # Everything imported so far (roboticstoolbox, pybullet, ...) lives as long as the server:
    # freezing it keeps the collector from scanning it, so a full collection cannot stall the
    # 1 kHz control loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        with server:
            print(ready_line(name, driver, server.endpoint, server.state_endpoint, server_keys is not None),
                  flush=True)
            while not done.wait(0.2) and server.control.failure is None:
                continue
    finally:
        # Frozen objects are never collected, not even at exit: the robot models' reference cycles
        # (roboticstoolbox robots, their nanobind ETS objects) outlived the interpreter, and
        # nanobind listed each as a leaked instance. The control loop is over: collect again.
        gc.unfreeze()
    if server.control.failure is not None:
        raise SystemExit(1)


@keys_app.command("generate")
def keys_generate(
    folder: Annotated[Path, typer.Argument(help="Folder to create the keys in.")],
    client: Annotated[str, typer.Option(help="Name of the client key pair.")] = "client",
) -> None:
    """Make a server key pair and an authorised client key pair."""
    from robocell.hardware.security import generate

    for path in generate(folder, client):
        print(path)
    print(f"serve with --keys {folder}; clients need {folder}/server.key and {folder}/{client}.key_secret")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
