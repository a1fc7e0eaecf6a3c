"""An in-process driver for server and control-loop tests: it does exactly what it is commanded."""

from __future__ import annotations

import time

import numpy as np

from robocell.hardware.driver import DriverInfo, DriverState


class FollowingDriver:
    """Follows every command at once; reads back the command plus ``offset`` (rad) and paces at ``pace`` s.

    ``pace`` is how long ``wait_period`` takes (the driver's own rhythm, not a synchronisation):
    1 ms for a 1 kHz arm, longer for a loop that is late on every tick.  ``offset`` models an
    arm that measures off its command (gravity sag, a lag that settled within tolerance).
    """

    def __init__(self, names: tuple[str, ...], lower: np.ndarray, upper: np.ndarray, q: np.ndarray, *,
                 pace: float = 0.001, offset: np.ndarray | None = None) -> None:
        self.info = DriverInfo(names, lower - 1.0, upper + 1.0, 1000.0)
        self.q = q.copy()
        self.offset = np.zeros_like(q) if offset is None else np.asarray(offset, dtype=float)
        self.pace = pace

    def read(self) -> DriverState:
        return DriverState(q=self.q + self.offset, qd=np.zeros_like(self.q))

    def command(self, q: np.ndarray, qd: np.ndarray) -> None:
        self.q = np.asarray(q, dtype=float).copy()

    def wait_period(self) -> None:
        time.sleep(self.pace)

    def gripper(self, width: float | None, force: float | None) -> None:
        pass

    def gripper_busy(self) -> bool:
        return False

    def stop(self) -> None:
        pass

    def object_poses(self) -> dict[str, np.ndarray]:
        return {}

    def close(self) -> None:
        pass
