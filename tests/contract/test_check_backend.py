"""check_backend, the public conformance check: it passes a good backend and names each broken promise.

The suite itself runs on every backend in test_arm_contract.py; here it meets backends that
break a promise on purpose (a fake gripper wrapped around the simulated one, injected as a
backend, no patching), and the three ways to hand it a backend.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from robocell.core.arm import Arm, Gripper, GripperHandle
from robocell.core.backends import Backend
from robocell.core.cell import Cell
from robocell.errors import ConfigError, ContractViolation
from robocell.testing import check_backend

from tests.conftest import TABLETOP


class _WrongWidthGripper(Gripper):
    """Opens fully whatever width it is asked for: a broken promise of Gripper.open."""

    def __init__(self, inner: Gripper) -> None:
        self.inner = inner
        self.max_width = inner.max_width

    def open(self, width: float | None = None, *, wait: bool = True) -> Any:
        return self.inner.open(None, wait=wait)

    def close(self, force: float | None = None, *, wait: bool = True) -> Any:
        return self.inner.close(force, wait=wait)

    def width(self) -> float:
        return self.inner.width()

    def grasped(self) -> bool:
        return self.inner.grasped()


class _NoWidthGripper(_WrongWidthGripper):
    """A driver that never implemented width(): an error inside a check, reported as its violation."""

    def width(self) -> float:
        raise NotImplementedError("width() is not implemented for this gripper")


class _Wrapped:
    """A backend whose grippers are replaced by fakes; everything else is the simulator's."""

    def __init__(self, inner: Backend, gripper: type[Gripper]) -> None:
        self.inner = inner
        self.arms: Mapping[str, Arm] = inner.arms
        self.grippers: Mapping[str, Gripper] = {n: gripper(g) for n, g in inner.grippers.items()}

    def object_pose(self, name: str) -> Any:
        return self.inner.object_pose(name)

    def held_object(self, arm: str) -> str | None:
        return self.inner.held_object(arm)

    def wait(self, seconds: float) -> None:
        self.inner.wait(seconds)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def sim_cell() -> Iterator[Cell]:
    with Cell.load(TABLETOP, "sim") as c:
        yield c


def test_a_good_backend_passes_from_a_factory() -> None:
    check_backend(lambda: Cell.load(TABLETOP, "sim"), checks=["state", "gripper", "arm_type"])


def test_a_running_backend_passes_and_its_handles_are_gripper_handles(sim_cell: Cell) -> None:
    check_backend(sim_cell.backend, checks=["state", "gripper"])
    handle = sim_cell.gripper().open(wait=False)
    assert isinstance(handle, GripperHandle) and handle.wait() is None


def test_a_broken_promise_names_method_expectation_and_outcome(sim_cell: Cell) -> None:
    broken = _Wrapped(sim_cell.backend, _WrongWidthGripper)
    assert isinstance(broken, Backend)
    with pytest.raises(ContractViolation) as info:
        check_backend(broken, checks=["gripper"])
    exc = info.value
    assert exc.method == "[gripper] Gripper.open(0.04)"
    assert exc.expected == "width 40 mm"
    assert "mm" in exc.actual and exc.actual != "40.0 mm"
    assert str(exc).startswith("[gripper] Gripper.open(0.04): expected width 40 mm; got ")
    assert isinstance(exc, AssertionError)  # pytest shows a failed check, not a crash
    again = pickle.loads(pickle.dumps(exc))  # whole across processes (e.g. from an eval worker)
    assert (again.method, again.expected, again.actual) == (exc.method, exc.expected, exc.actual)


def test_an_error_inside_a_check_is_that_checks_violation(sim_cell: Cell) -> None:
    with pytest.raises(ContractViolation, match=r"\[gripper\] check: expected to complete without an error; "
                                                r"got NotImplementedError: width\(\) is not implemented") as info:
        check_backend(_Wrapped(sim_cell.backend, _NoWidthGripper), checks=["gripper"])
    assert isinstance(info.value.__cause__, NotImplementedError)


def test_bad_arguments_are_config_errors(sim_cell: Cell) -> None:
    with pytest.raises(ConfigError, match="unknown check.*nope.*the checks are: state"):
        check_backend(sim_cell, checks=["nope"])
    with pytest.raises(ConfigError, match="expected a Cell, a Backend or a function returning a Cell, got int"):
        check_backend(3)
    with pytest.raises(ConfigError, match="arm='kuka'.*its arms are: panda"):
        check_backend(sim_cell.backend, arm="kuka", checks=["state"])
