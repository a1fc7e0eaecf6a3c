"""Drivers that kill a server thread on demand, for the fail-stop tests.

``DyingDriver`` follows every command (:class:`tests.hardware.fakedriver.FollowingDriver`);
a ``gripper`` command arms it to fail in the thread named by ``die_in``:

- ``control``: the next ``read()`` on the control thread raises ``RuntimeError``;
- ``commands``: the next read of ``info`` on the command thread (``hello`` reads it) raises
  :class:`ThreadKill`, a ``BaseException`` that no per-message handler catches.

``stop()`` calls are counted, and appended to the file ``marker`` when given (a server in
another process reports them that way).  ``robocell serve --driver dying`` finds it through
the ``robocell.drivers`` entry point that :func:`install_entry_point` writes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from robocell.cellfile.spec import CellSpec
from robocell.hardware.driver import DriverInfo, DriverState
from robocell.motion.kinematics_setup import arm_parts

from tests.hardware.fakedriver import FollowingDriver


class ThreadKill(BaseException):
    """Not an Exception: escapes every ``except Exception``, as a real thread killer would."""


class DyingDriver(FollowingDriver):
    def __init__(self, spec: CellSpec, arm: str, *, die_in: str = "control", marker: str = "") -> None:
        self.die_in = die_in
        self.marker = Path(marker) if marker else None
        self.armed = False
        self.stops = 0
        arm_spec = next(a for a in spec.arms if a.name == arm)
        model, kin, safety = arm_parts(arm_spec)
        super().__init__(tuple(kin.joint_names), safety.lower, safety.upper, np.asarray(model.home, dtype=float))
        self._info = DriverInfo(self._info.joint_names, self._info.lower, self._info.upper, 1000.0,
                                gripper_max_width=0.08, vendor="dying")

    @property  # type: ignore[override]
    def info(self) -> DriverInfo:
        if self.armed and self.die_in == "commands" and threading.current_thread().name == "robocell-commands":
            raise ThreadKill("the command thread was killed by the test driver")
        return self._info

    @info.setter
    def info(self, value: DriverInfo) -> None:
        self._info = value

    def read(self) -> DriverState:
        if self.armed and self.die_in == "control":
            raise RuntimeError("the test driver failed on purpose in read()")
        return super().read()

    def gripper(self, width: float | None, force: float | None) -> None:
        self.armed = True

    def stop(self) -> None:
        self.stops += 1
        if self.marker is not None:
            with self.marker.open("a") as f:
                f.write("stop\n")


def install_entry_point(folder: Path) -> Path:
    """A dist-info folder registering ``dying`` in the ``robocell.drivers`` group; put ``folder``
    on PYTHONPATH and ``robocell serve --driver dying`` loads this module (the real plugin path)."""
    info = folder / "robocell_dying_driver-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: robocell-dying-driver\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[robocell.drivers]\ndying = tests.hardware.dying:DyingDriver\n")
    return folder


def options(**kw: Any) -> list[str]:
    out: list[str] = []
    for k, v in kw.items():
        out += ["--driver-option", f"{k}={v}"]
    return out
