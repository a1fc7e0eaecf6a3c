"""Grasp and placement geometry for parallel grippers over a table (world frame, SI units)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from spatialmath import SE3

if TYPE_CHECKING:
    from robocell.cellfile.spec import FixtureSpec, ObjectSpec

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


# The open hand seen from its TCP (hand frame: fingers close along y), a conservative allowance that
# covers the Panda hand and the built-in KUKA and UR5e grippers: each finger reaches this far beyond
# the opening along the closing axis, this far either side across it, and this far below the TCP;
# the hand body starts this far above the TCP.
FINGER_OUTSIDE = 0.035  # m
FINGER_SIDE = 0.015  # m, half width
FINGER_BELOW_TCP = 0.012  # m
HAND_HALF = (0.04, 0.11)  # m, half sizes of the hand body (x, y in the hand frame)
HAND_ABOVE_TCP = 0.035  # m
CLEAR_MARGIN = 0.005  # m: a finger passing closer than this to something counts as touching it


@dataclass(frozen=True)
class Footprint:
    """Something upright seen from above: centre (x, y), heading, half sizes, top and bottom heights (world, m)."""

    name: str
    centre: np.ndarray
    yaw: float
    half: tuple[float, float]
    top: float
    bottom: float = 0.0


def _axes(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, s], [-s, c]])  # rows: the footprint's x and y axes in the world


def overlaps(a: Footprint, b: Footprint, margin: float = 0.0) -> bool:
    """Whether two footprints meet in plan (separating axes) and in height, ``a`` grown by ``margin``."""
    if a.bottom - margin > b.top or b.bottom - margin > a.top:
        return False
    d = np.asarray(b.centre, dtype=float)[:2] - np.asarray(a.centre, dtype=float)[:2]
    A, B = _axes(a.yaw), _axes(b.yaw)
    ha, hb = np.asarray(a.half) + margin, np.asarray(b.half)
    for axis in (*A, *B):
        ra = float(np.sum(ha * np.abs(A @ axis)))
        rb = float(np.sum(hb * np.abs(B @ axis)))
        if abs(float(d @ axis)) > ra + rb:
            return False
    return True


def hand_footprints(tcp: np.ndarray, yaw: float, opening: float) -> list[Footprint]:
    """The two open fingers and the hand body of a top-down grasp at TCP position ``tcp`` and heading ``yaw``."""
    axes = _axes(yaw)
    out = []
    for side, name in ((-1, "left finger"), (1, "right finger")):
        centre = np.asarray(tcp[:2]) + side * (opening / 2 + FINGER_OUTSIDE / 2) * axes[1]
        out.append(Footprint(name, centre, yaw, (FINGER_SIDE, FINGER_OUTSIDE / 2),
                             top=float(tcp[2]) + HAND_ABOVE_TCP, bottom=float(tcp[2]) - FINGER_BELOW_TCP))
    out.append(Footprint("hand", np.asarray(tcp[:2]), yaw, HAND_HALF, top=math.inf,
                         bottom=float(tcp[2]) + HAND_ABOVE_TCP))
    return out


def object_footprint(name: str, obj: ObjectSpec, pose: SE3) -> Footprint | None:
    """An object's footprint (boxes and cylinders; None for a mesh, whose extent is not known)."""
    if obj.shape == "mesh":
        return None
    half = (obj.size[0], obj.size[0]) if obj.shape == "cylinder" else (obj.size[0] / 2, obj.size[1] / 2)
    bottom = lowest_z(obj, pose)
    return Footprint(name, np.asarray(pose.t[:2], dtype=float), yaw_of(pose), half,
                     top=2 * float(pose.t[2]) - bottom, bottom=bottom)


def fixture_footprints(fx: FixtureSpec) -> list[Footprint]:
    """An obstacle's box, or a bin's or tray's four walls (their floor is below any grasp)."""
    T = fx.pose.se3()
    yaw, z = yaw_of(T), float(T.t[2])
    ix, iy, h = fx.size
    if fx.is_obstacle:
        return [Footprint(fx.name, np.asarray(T.t[:2], dtype=float), yaw, (ix / 2, iy / 2), top=z + h, bottom=z)]
    w = fx.wall
    walls = [((w / 2, iy / 2 + w), (ix / 2 + w / 2, 0.0)), ((w / 2, iy / 2 + w), (-ix / 2 - w / 2, 0.0)),
             ((ix / 2, w / 2), (0.0, iy / 2 + w / 2)), ((ix / 2, w / 2), (0.0, -iy / 2 - w / 2))]
    return [Footprint(fx.name, np.asarray((T * np.array([cx, cy, 0.0])).ravel()[:2]), yaw, half,
                      top=z + w + h, bottom=z) for half, (cx, cy) in walls]


def grasp_options(obj: ObjectSpec, pose: SE3, max_width: float, ref_yaw: float,
                  keep_clear: list[Footprint] | None = None) -> list[tuple[Grasp, list[str]]]:
    """Top-down grasps of ``obj`` at ``pose``, best first, each with what its open hand would touch.

    Fingers go across a side narrower than the opening (every quarter turn for boxes).  A
    grasp whose open fingers or hand meet nothing in ``keep_clear`` (other objects, fixture
    walls) comes before one that would land on something; then the heading closest to
    ``ref_yaw`` wins, which keeps the wrist away from its joint limits.
    """
    yaw = yaw_of(pose)
    if obj.shape == "cylinder":
        candidates = [(ref_yaw + k * math.pi / 2, 2 * obj.size[0]) for k in range(4)]
    else:
        candidates = [(yaw + k * math.pi / 2, obj.size[(k + 1) % 2]) for k in range(4)]
    centre = np.asarray(pose.t, dtype=float)
    z = max(centre[2], FINGER_CLEARANCE)
    out = []
    for y, w in candidates:
        if w >= max_width - 0.008:
            continue
        tcp = np.array([centre[0], centre[1], z])
        hits = sorted({k.name for f in hand_footprints(tcp, y, max_width) for k in keep_clear or []
                       if overlaps(f, k, CLEAR_MARGIN)})
        out.append((Grasp(tcp=top_down(tcp, wrap(y)), width=w), hits, abs(wrap(y - ref_yaw))))
    out.sort(key=lambda g: (bool(g[1]), g[2]))
    return [(g, hits) for g, hits, _ in out]


def grasp_for(obj: ObjectSpec, pose: SE3, max_width: float, ref_yaw: float,
              keep_clear: list[Footprint] | None = None) -> Grasp | None:
    """The best of :func:`grasp_options`, or None when the object is wider than the gripper opens on every side."""
    options = grasp_options(obj, pose, max_width, ref_yaw, keep_clear)
    return options[0][0] if options else None


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


def lowest_z(obj: ObjectSpec, pose: SE3) -> float:
    """World height of the lowest point of ``obj`` at ``pose`` (tilted or not).

    Boxes and cylinders are exact for the nominal size; a mesh is estimated from its
    half height, as :attr:`ObjectSpec.half_height` does.
    """
    R = np.asarray(pose.R, dtype=float)
    z = float(pose.t[2])
    if obj.shape == "box":
        return z - float(sum(abs(R[2, i]) * obj.size[i] / 2 for i in range(3)))
    if obj.shape == "cylinder":
        radius, height = obj.size[0], obj.size[1]
        axis_up = abs(R[2, 2])
        return z - axis_up * height / 2 - math.sqrt(max(0.0, 1.0 - axis_up**2)) * radius
    return z - obj.half_height


def footprint_reach(obj: ObjectSpec) -> float:
    """How far the object's footprint reaches from its centre, in the table plane, at most (m)."""
    if obj.shape == "cylinder":
        return float(obj.size[0])
    return math.hypot(obj.size[0], obj.size[1]) / 2
