"""The Driver: the narrow interface a vendor SDK or the simulator gives ArmServer.

The server owns everything else (planning, the safety envelope, the watchdog,
trajectory interpolation): each control tick it reads the state, and sends
one checked joint setpoint.  A driver therefore only has to

- describe the arm (:class:`DriverInfo`),
- read the measured state (:meth:`Driver.read`),
- apply a joint setpoint (:meth:`Driver.command`) and wait for the next
  control period (:meth:`Driver.wait_period`),
- drive the gripper (:meth:`Driver.gripper`),
- and stop on its own when the server goes away (:meth:`Driver.stop`).

Adding a robot is one module with a class implementing this protocol and one
registration: a ``robocell.drivers`` entry point, or an entry in
:data:`BUILTIN_DRIVERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from robocell.core import plugins
from robocell.errors import BackendError

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec

BUILTIN_DRIVERS: Mapping[str, str] = {
    "sim": "robocell.hardware.drivers.sim:SimDriver",
    "ur_rtde": "robocell.hardware.drivers.ur:URDriver",
}


@dataclass(frozen=True)
class DriverInfo:
    """What the hardware is: joint names and hardware limits, gripper, control rate."""

    joint_names: tuple[str, ...]
    lower: np.ndarray  # rad, the hardware's own limits (the cell's envelope may be tighter)
    upper: np.ndarray
    control_rate: float  # Hz at which the driver wants setpoints (UR: 500, sim: 1000)
    gripper_max_width: float = 0.0  # m; 0 = no gripper
    vendor: str = ""


@dataclass(frozen=True)
class DriverState:
    """One measurement. ``tcp`` is the 4x4 TCP pose in the arm base frame if the driver measures it."""

    q: np.ndarray  # rad
    qd: np.ndarray  # rad/s
    gripper_width: float = 0.0  # m
    grasped: bool = False
    tcp: np.ndarray | None = None
    faults: tuple[str, ...] = field(default_factory=tuple)  # hardware-reported faults (e-stop, ...)


@runtime_checkable
class Driver(Protocol):
    """Implemented by every arm driver (see the module docstring)."""

    info: DriverInfo

    def read(self) -> DriverState:
        """The latest measured state (non-blocking)."""
        ...

    def command(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Apply one joint position setpoint (with its feed-forward velocity) for this period."""
        ...

    def wait_period(self) -> None:
        """Block until the next control period (the simulator advances physics here)."""
        ...

    def gripper(self, width: float | None, force: float | None) -> None:
        """Open to ``width`` m (``force`` None), or close with ``force`` N (``width`` None). Non-blocking."""
        ...

    def gripper_busy(self) -> bool:
        """True while the gripper is still moving."""
        ...

    def stop(self) -> None:
        """Stop the arm by the hardware's own means (used when the server shuts down)."""
        ...

    def object_poses(self) -> dict[str, np.ndarray]:
        """World poses (4x4) of cell objects if the driver can perceive them, else {}."""
        ...

    def close(self) -> None:
        ...


def available_drivers() -> dict[str, str]:
    return plugins.available("robocell.drivers", BUILTIN_DRIVERS)


def create_driver(name: str, spec: CellSpec, arm: str, **options: Any) -> Driver:
    """Instantiate a registered driver as ``cls(spec, arm, **options)``."""
    known = available_drivers()
    if name not in known:
        raise BackendError(f"unknown driver '{name}'; available drivers: {', '.join(sorted(known))}")
    try:
        cls = plugins.load(known[name])
    except ImportError as exc:
        raise BackendError(
            f"driver '{name}' needs a package that is not installed ({exc.name}); "
            f"install robocell with the matching extra, e.g. pip install 'robocell[{name.split('_')[0]}]'"
        ) from exc
    driver: Driver = cls(spec, arm, **options)
    return driver
