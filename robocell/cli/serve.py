"""``robocell serve`` and ``robocell keys``: the hardware side of the command line."""

from __future__ import annotations

import gc
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from robocell.errors import ConfigError
from robocell.core.outputs import check_output

if TYPE_CHECKING:
    from robocell.hardware.security import ServerKeys

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


def _return_large_buffers() -> None:
    """Make glibc hand every large buffer back to the system when it is freed.

    Requests are decoded from buffers up to MAX_SOCKET_MESSAGE; glibc's adaptive threshold
    otherwise moves such sizes onto the heap after the first free, and four clients sending
    7.9 MB frames left 1.5 GB resident after they stopped. A fixed 128 KiB threshold keeps
    larger blocks in their own mappings, returned on free. Elsewhere than glibc: nothing to do.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc (musl has no mallopt): its allocator already returns large blocks
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 128 * 1024)
    mallopt(m_trim_threshold, 1024 * 1024)


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
    audit_max_bytes: Annotated[int, typer.Option(help="Rotate the audit log at this size (bytes).")] = 16 * 1024 * 1024,
    audit_keep: Annotated[int, typer.Option(help="Rotated audit files kept (FILE.1 ... FILE.N).")] = 5,
    insecure: Annotated[bool, typer.Option(help="Allow a non-loopback bind without keys.")] = False,
    rate: Annotated[float, typer.Option(help="Requests per second one client may send (100-1e7).")] = 5000.0,
    driver_option: Annotated[Optional[list[str]], typer.Option(help="NAME=VALUE passed to the driver (repeatable).")] = None,
    control: Annotated[str, typer.Option(help=(
        "Where the 1 kHz control loop runs: 'thread' (a thread of this process) or 'process' (its own process, "
        "at real-time priority where granted, with its own realtime socket for servo, heartbeat and stop)."))] = "thread",
    realtime: Annotated[str, typer.Option(help=(
        "--control process: 'auto' takes SCHED_FIFO if the host grants it (else says why and runs normal), "
        "'require' exits 2 if refused, 'off' never asks."))] = "auto",
    rt_priority: Annotated[int, typer.Option(help="--control process: its SCHED_FIFO priority (1-98).")] = 80,
    rt_bind: Annotated[Optional[str], typer.Option(help=(
        "--control process: the realtime endpoint (default: command port + 2)."))] = None,
) -> None:
    """Serve one arm of a cell over ZeroMQ, with a driver (the simulator or a real arm).

    Long on purpose: most of it is the flat list of its options; the body checks them, then
    builds and runs the server in one straight sequence.
    """
    from robocell.cellfile.spec import load_cell_spec
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
    _check_options(audit, audit_max_bytes, audit_keep, control, realtime, rt_priority)
    check_free(bind, state_bind)
    check_deadline(liveness, "--liveness")  # deadlines too: before the driver connects to anything
    if control == "process":
        _return_large_buffers()
        _serve_process(cell, name, driver, bind, state_bind, rt_bind, state_rate, watchdog, lease_timeout,
                       servo_timeout, keys, server_keys, audit, insecure, audit_max_bytes, audit_keep, rate, liveness,
                       realtime, rt_priority, _parse_options(driver_option or []))
        return
    # the control thread must get the GIL back within a fraction of its 1 ms period
    sys.setswitchinterval(0.0002)
    _return_large_buffers()
    drv = create_driver(driver, spec, name, **_parse_options(driver_option or []))
    try:
        server = ArmServer(spec, name, drv, bind=bind, state_bind=state_bind, state_rate=state_rate,
                           watchdog=watchdog, lease_timeout=lease_timeout, keys=server_keys, audit=audit, insecure=insecure,
                           audit_max_bytes=audit_max_bytes, audit_keep=audit_keep, rate=rate, liveness=liveness,
                           servo_timeout=servo_timeout)
    except BaseException:
        drv.close()
        raise
    # Everything imported so far (roboticstoolbox, pybullet, ...) lives as long as the server:
    # freezing it keeps the collector from scanning it, so a full collection cannot stall the
    # 1 kHz control loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    _run(server, ready_line(name, driver, server.endpoint, server.state_endpoint, server_keys is not None))


def _check_options(audit: Path | None, audit_max_bytes: int, audit_keep: int, control: str, realtime: str,
                   rt_priority: int) -> None:
    """Refuse a bad --audit, --audit-max-bytes, --audit-keep, --control, --realtime or --rt-priority."""
    if audit is not None:
        # appended to, never replaced: an audit log that exists is the point, so no --force
        check_output(audit, "--audit", kind="append")
    if not 4096 <= audit_max_bytes <= 2**40:
        raise ConfigError(f"--audit-max-bytes {audit_max_bytes} is outside [4096, 2^40] bytes; "
                          "give the size at which the audit log is rotated, e.g. 16777216")
    if not 0 <= audit_keep <= 1000:
        raise ConfigError(f"--audit-keep {audit_keep} is outside [0, 1000]; give how many rotated files to keep")
    if control not in ("thread", "process"):
        raise ConfigError(f"--control {control!r}: choose 'thread' (default) or 'process'")
    if realtime not in ("auto", "require", "off"):
        raise ConfigError(f"--realtime {realtime!r}: choose 'auto' (default), 'require' or 'off'")
    if not 1 <= rt_priority <= 98:
        raise ConfigError(f"--rt-priority {rt_priority} is outside [1, 98]; 80 (the default) is above the "
                          "kernel's threaded interrupt handlers (50)")


def _run(server: object, line: str) -> None:
    """Serve until SIGINT/SIGTERM; exit 1 (the arm stopped) when any part of the server died."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    failure: str | None = None
    try:
        with server:  # type: ignore[attr-defined]
            print(line, flush=True)
            while not done.wait(0.1):
                failure = server.failure()  # type: ignore[attr-defined]  # stops the arm when any part died
                if failure is not None:
                    break
    finally:
        # Frozen objects are never collected, not even at exit: the robot models' reference cycles
        # (roboticstoolbox robots, their nanobind ETS objects) outlived the interpreter, and
        # nanobind listed each as a leaked instance. The control loop is over: collect again.
        gc.unfreeze()
    if failure is not None:
        # never half-alive: exit so a supervisor restarts the server (status 1: not a user mistake)
        print(f"robocell serve: exiting with status 1: {failure}; the arm was stopped. Restart the server "
              "(a supervisor such as systemd with Restart=on-failure does it)", file=sys.stderr, flush=True)
        raise SystemExit(1)


def _port_plus(bind: str, k: int, tail: str) -> str:
    """``bind``'s host with its port + k (port 0 stays 0: random); other transports get ``tail`` appended."""
    head, _, port = bind.rpartition(":")
    if port in ("0", "*"):
        return head + ":0"
    return f"{head}:{int(port) + k}" if port.isdigit() and bind.startswith("tcp://") else bind + tail


def _serve_process(cell: Path, name: str, driver: str, bind: str, state_bind: Optional[str], rt_bind: Optional[str],
                   state_rate: float, watchdog: float, lease_timeout: float, servo_timeout: float,
                   keys: Optional[Path], server_keys: ServerKeys | None, audit: Optional[Path], insecure: bool,
                   audit_max_bytes: int, audit_keep: int, rate: float, liveness: float, realtime: str,
                   rt_priority: int, driver_options: dict[str, object]) -> None:
    """``--control process``: the control process creates the driver; this one handles commands."""
    from robocell.hardware.controlproc import ProcessOptions
    from robocell.hardware.security import check_bind
    from robocell.hardware.server import ArmServer
    from robocell.hardware.spawn import ready_line

    from robocell.cellfile.spec import load_cell_spec

    rt = rt_bind or _port_plus(bind, 2, "-rt")
    check_bind(rt, server_keys, insecure)
    opts = ProcessOptions(cell=str(cell), arm=name, driver=driver, driver_options=driver_options,
                          state_bind=state_bind or _port_plus(bind, 1, "-state"), rt_bind=rt, state_rate=state_rate,
                          watchdog=watchdog, lease_timeout=lease_timeout, servo_timeout=servo_timeout,
                          keys=str(keys) if keys is not None else None, realtime=realtime, rt_priority=rt_priority)
    spec = load_cell_spec(cell)
    # no driver in this process: the control process owns it (ArmServer's process mode never reads it)
    server = ArmServer(spec, name, None, bind=bind, state_rate=state_rate, watchdog=watchdog,  # type: ignore[arg-type]
                       lease_timeout=lease_timeout, keys=server_keys, audit=audit,
                       insecure=insecure, audit_max_bytes=audit_max_bytes, audit_keep=audit_keep, rate=rate,
                       liveness=liveness, servo_timeout=servo_timeout, control="process", process_options=opts)
    assert server.control_proxy is not None
    gc.collect()
    gc.freeze()
    _run(server, ready_line(name, driver, server.endpoint, server.state_endpoint, server_keys is not None)
         + f" realtime {server.control_proxy.rt_endpoint} ({server.control_proxy.scheduling})")


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
    # the help is given here: the docstring goes on to say why the function is long
    app.command("serve", help="Serve one arm of a cell over ZeroMQ, with a driver (the simulator or a real arm).")(serve)
    app.add_typer(keys_app, name="keys")
