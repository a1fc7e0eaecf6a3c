"""The Arm and Gripper conformance suite: every backend must pass it unchanged.

The checks themselves are public, :func:`robocell.testing.check_backend` (in
robocell/testing/backend_check.py), so that a third-party backend or driver runs exactly
these; here they run on every backend of ``BACKENDS``, one test per check. A
backend joins by adding a factory to ``BACKENDS`` (the remote ZeroMQ backend adds
one that starts a server with the sim driver in another process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from robocell.core.cell import Cell
from robocell.testing import check_backend

from tests.conftest import KUKA, TABLETOP
from robocell.hardware.spawn import ServerProcess


def _sim(request: pytest.FixtureRequest, path: object) -> Cell:
    return Cell.load(path, "sim")


def _remote(request: pytest.FixtureRequest, path: object) -> Cell:
    """A cell whose arm is served by `robocell serve --driver sim` in another process.

    One server per cell file for the module (starting one costs seconds); each test gets a
    fresh client, and check_backend brings the arm back to a fresh state (reset, home, gripper
    open, at rest) through the protocol itself before the check.
    """
    server = request.getfixturevalue("remote_servers")(path)  # watchdog 0.5 s: see remote_servers
    return Cell.load(path, server.endpoint)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, object], Cell]] = {"sim": _sim, "remote": _remote}
CELLS = {"panda": TABLETOP, "kuka": KUKA}


@pytest.fixture(scope="module")
def remote_servers() -> Iterator[Callable[[object], ServerProcess]]:
    # The watchdog is tested on its own (tests/hardware); here a 0.5 s deadline keeps a
    # heavily loaded CI host (scheduler stalls of 50+ ms) from tripping it in contract tests.
    servers: dict[str, ServerProcess] = {}

    def get(path: object) -> ServerProcess:
        if str(path) not in servers:
            servers[str(path)] = ServerProcess(str(path), "--watchdog", "0.5", "--liveness", "0.5").start()
        return servers[str(path)]

    yield get
    for srv in servers.values():
        srv.kill()


@pytest.fixture(params=[(b, c) for b in BACKENDS for c in CELLS], ids=lambda p: f"{p[0]}-{p[1]}")
def cell(request: pytest.FixtureRequest) -> Iterator[Cell]:
    backend, cell_name = request.param
    c = BACKENDS[backend](request, CELLS[cell_name])
    try:
        yield c
    finally:
        c.close()


def test_state_is_consistent(cell: Cell) -> None:
    check_backend(cell, checks=["state"])


def test_move_joints_blocking_reaches_target(cell: Cell) -> None:
    check_backend(cell, checks=["move_joints_blocking"])


def test_move_joints_respects_speed_limit(cell: Cell) -> None:
    check_backend(cell, checks=["speed_limit"])


def test_move_pose_joint_and_linear(cell: Cell) -> None:
    check_backend(cell, checks=["move_pose"])


def test_follow_timed_trajectory(cell: Cell) -> None:
    check_backend(cell, checks=["follow"])


def test_cancel_stops_and_latches(cell: Cell) -> None:
    check_backend(cell, checks=["cancel"])


def test_cancelled_blocking_motion_raises(cell: Cell) -> None:
    check_backend(cell, checks=["cancelled_blocking_raises"])


def test_servo_stream_and_step_limit(cell: Cell) -> None:
    check_backend(cell, checks=["servo"])


@pytest.mark.parametrize("kind", ["limit", "nan", "inf", "shape"])
def test_bad_joint_targets_rejected_without_motion(cell: Cell, kind: str) -> None:
    check_backend(cell, checks=[f"bad_target_{kind}"])


def test_unreachable_and_out_of_workspace_poses(cell: Cell) -> None:
    check_backend(cell, checks=["unreachable"])


def test_gripper_open_close_and_grasp(cell: Cell) -> None:
    check_backend(cell, checks=["gripper"])


def test_arm_is_an_arm(cell: Cell) -> None:
    check_backend(cell, checks=["arm_type"])
