"""Grasp and placement geometry for parallel grippers over a table (world frame, SI units)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from spatialmath import SE3

if TYPE_CHECKING:
    from robocell.cellfile import FixtureSpec, ObjectSpec

FINGER_CLEARANCE = 0.02  # m: keep the TCP this far above the table so fingertips clear it


def top_down(position: np.ndarray, yaw: float) -> SE3:
    """TCP pose pointing straight down, fingers closing along the rotated world y axis."""
    return SE3.Trans(position) * SE3.Rz(yaw) * SE3.Rx(math.pi)


def yaw_of(T: SE3) -> float:
    """Heading of a pose's x axis projected on the table plane."""
    x = T.R[:, 0]
    return math.atan2(x[1], x[0])


def wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def top_down_yaw(T: SE3) -> float:
    """The yaw of a top-down TCP pose (x axis heading)."""
    return yaw_of(T)


@dataclass(frozen=True)
class Grasp:
    tcp: SE3  # grasp pose of the TCP
    width: float  # object extent between the fingers, m


def grasp_for(obj: ObjectSpec, pose: SE3, max_width: float, ref_yaw: float) -> Grasp | None:
    """A top-down grasp of ``obj`` at ``pose``, fingers across its narrowest graspable side.

    Of the candidate headings (every quarter turn for boxes) the one closest to
    ``ref_yaw`` wins, which keeps the wrist away from its joint limits.
    """
    yaw = yaw_of(pose)
    if obj.shape == "box":
        candidates = [(yaw + k * math.pi / 2, obj.size[(k + 1) % 2]) for k in range(4)]
    elif obj.shape == "cylinder":
        candidates = [(ref_yaw, 2 * obj.size[0])]
    else:
        candidates = [(yaw + k * math.pi / 2, obj.size[(k + 1) % 2]) for k in range(4)]
    fits = [(y, w) for y, w in candidates if w < max_width - 0.008]
    if not fits:
        return None
    y, w = min(fits, key=lambda c: abs(wrap(c[0] - ref_yaw)))
    centre = np.asarray(pose.t, dtype=float)
    z = max(centre[2], FINGER_CLEARANCE)
    return Grasp(tcp=top_down(np.array([centre[0], centre[1], z]), wrap(y)), width=w)


def floor_z(fx: FixtureSpec) -> float:
    """Height of a bin's or tray's inner floor (the fixture stands on its pose).

    An obstacle is solid and has no floor: asking for one is a ConfigError, never a made-up height.
    """
    if fx.is_obstacle:
        from robocell.errors import ConfigError

        raise ConfigError(f"'{fx.name}' is an obstacle (a solid box): it has no inner floor to place on")
    return float(fx.pose.se3().t[2]) + fx.wall


def slot_cell(fx: FixtureSpec) -> tuple[float, float]:
    """Half sizes (x, y) of one slot's cell in the fixture frame."""
    assert fx.slots is not None
    return fx.size[0] / fx.slots.cols / 2, fx.size[1] / fx.slots.rows / 2
