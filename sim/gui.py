"""The PyBullet window: check that one can open, and frame its camera on the cell.

PyBullet's GUI on Linux opens an X11 window; when no X server answers it
prints "cannot connect to X server" and calls ``exit(1)`` from C, which no
Python code can catch.  :func:`check_display` therefore asks the X server
itself (``XOpenDisplay`` through libX11, the library PyBullet uses) before
PyBullet is told to connect, and raises a :class:`BackendError` that says
what is missing and what to do.

:func:`frame_cell` points the debug visualizer's camera at the cell: the
bounding box of every link of every body (table, arms, objects, fixtures) is fitted into
the window, with the window's own projection matrix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robocell.errors import BackendError

#: what every "no display" message ends with: the three ways out
REMEDY = ("set DISPLAY to a running X server (e.g. DISPLAY=:0), run the command under a virtual one "
          "(`xvfb-run -a robocell ...`, Debian package xvfb), or drop --gui")

CAMERA_YAW = 90.0  # deg: PyBullet's yaw 90 looks along -x, from the far side of the table towards the arm
CAMERA_PITCH = -35.0  # deg: looking down on the table top, as a person standing at it
CAMERA_DEADLINE = 60.0  # s for the window to take a camera position (a software-rendered frame on a busy host)
CAMERA_POLL = 0.05  # s between checks that it did
FILL = 0.97  # share of the window's half-height/half-width the cell's image may reach


RESET_PATIENCE = 20.0  # s: an X server resets when its last client leaves, and refuses connections meanwhile


def _local_socket(display: str) -> Path | None:
    """The Unix socket of a local display such as ":57" or ":57.0", or None for a remote one."""
    host, _, rest = display.partition(":")
    number = rest.split(".")[0]
    if host not in ("", "unix") or not number.isdigit():
        return None
    return Path(f"/tmp/.X11-unix/X{number}")


def _libx11() -> Any | None:
    lib = ctypes.util.find_library("X11")
    if lib is None:
        return None
    x11 = ctypes.CDLL(lib)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return x11


def _open(x11: Any, display: str) -> int | None:
    """An X connection to ``display``, or None.

    An X server regenerates when its last client disconnects (Xvfb and xvfb-run do by
    default) and refuses connections until it is done, which takes longer on a busy host.
    A local server whose socket exists is therefore retried for :data:`RESET_PATIENCE`.
    """
    socket = _local_socket(display)
    deadline = time.monotonic() + RESET_PATIENCE
    while True:
        dpy = x11.XOpenDisplay(display.encode())
        if dpy:
            return int(dpy)
        if socket is None or not socket.exists() or time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def display_problem(environ: dict[str, str] | None = None, platform: str = sys.platform) -> str | None:
    """Why the PyBullet window cannot open here, or None when it can (or when this is not X11)."""
    if not platform.startswith("linux"):
        return None  # macOS and Windows windows need no X server
    env = os.environ if environ is None else environ
    display = env.get("DISPLAY", "")
    if not display:
        return "--gui opens the PyBullet window, but DISPLAY is not set: there is no X server to show it on"
    x11 = _libx11()
    if x11 is None:
        return (f"--gui opens the PyBullet window on DISPLAY={display}, but libX11 is not installed "
                "(Debian package libx11-6)")
    dpy = _open(x11, display)
    if dpy is None:
        return (f"--gui opens the PyBullet window, but no X server accepts a connection at "
                f"DISPLAY={display} (not running, or it refused this user)")
    x11.XCloseDisplay(dpy)
    return None


def check_display() -> None:
    """Raise :class:`BackendError` (exit code 2 on the CLI) when the PyBullet window cannot open."""
    problem = display_problem()
    if problem is not None:
        raise BackendError(f"{problem}; {REMEDY}")


@contextmanager
def display_held() -> Iterator[None]:
    """Check the display and keep a connection to it open for the duration.

    PyBullet opens its window with one ``XOpenDisplay`` and calls ``exit`` when that fails.
    Holding a connection while it does keeps the server from regenerating in between (the
    check's own disconnect would otherwise start a reset on a server with no other client).
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    check_display()
    x11 = _libx11()
    dpy = _open(x11, os.environ["DISPLAY"]) if x11 is not None else None
    if x11 is None or dpy is None:
        raise BackendError(f"the X server at DISPLAY={os.environ.get('DISPLAY', '')} stopped answering; {REMEDY}")
    try:
        yield
    finally:
        x11.XCloseDisplay(dpy)


@dataclass(frozen=True)
class CameraView:
    """What ``resetDebugVisualizerCamera`` takes: distance (m), yaw and pitch (deg), target (m, world)."""

    distance: float
    yaw: float
    pitch: float
    target: tuple[float, float, float]


#: pixels of the window that PyBullet's panel covers (left, top, right, bottom), measured on
#: PyBullet 3.2.7 whatever the window size: the example list, the menu bar, the parameter
#: list with the sliders, and the log.  The scene is drawn under them, so the cell is fitted
#: into what is left.
PANEL_MARGINS = (250, 22, 250, 122)


@dataclass(frozen=True)
class Viewport:
    """The part of the window the cell must fit in, in normalised device coordinates (-1..1, y up)."""

    left: float = -1.0
    right: float = 1.0
    bottom: float = -1.0
    top: float = 1.0

    @staticmethod
    def inside_margins(width: int, height: int, margins: Sequence[int]) -> Viewport:
        """The window less ``margins`` pixels (left, top, right, bottom); the whole window if too small."""
        ml, mt, mr, mb = margins
        if width - ml - mr < width / 4 or height - mt - mb < height / 4:
            return Viewport()
        return Viewport(-1 + 2 * ml / width, 1 - 2 * mr / width, -1 + 2 * mb / height, 1 - 2 * mt / height)


def _corners(lo: Sequence[float], hi: Sequence[float]) -> np.ndarray:
    return np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def fit_view(pb: Any, points: np.ndarray, projection: Sequence[float],
             viewport: Viewport | None = None, yaw: float = CAMERA_YAW, pitch: float = CAMERA_PITCH,
             fill: float = FILL) -> CameraView:
    """The nearest camera at ``yaw``/``pitch`` whose view shows every point (n x 3, m) in ``viewport``.

    ``projection`` is the window's 4x4 projection matrix as PyBullet gives it (column-major):
    it carries the field of view and the aspect ratio, so the fit holds for any window size.
    The view matrix comes from PyBullet's own ``computeViewMatrixFromYawPitchRoll``, the
    convention of ``resetDebugVisualizerCamera``.  For each distance the target is slid in
    the image plane until the points' image is centred on the viewport; the distance is then
    found by bisection (what is seen from further away looks smaller).
    """
    vp = viewport or Viewport()
    centre = np.array([(vp.left + vp.right) / 2, (vp.bottom + vp.top) / 2])
    half = np.array([(vp.right - vp.left) / 2, (vp.top - vp.bottom) / 2]) * fill
    pts = np.asarray(points, dtype=float)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    corners = np.hstack([pts, np.ones((len(pts), 1))])
    box_centre = (lo + hi) / 2
    proj = np.asarray(projection, dtype=float).reshape(4, 4).T

    def project(target: np.ndarray, distance: float) -> tuple[np.ndarray | None, np.ndarray]:
        view = np.asarray(pb.computeViewMatrixFromYawPitchRoll(list(target), distance, yaw, pitch, 0, 2))
        view = view.reshape(4, 4).T
        clip = (proj @ view @ corners.T).T
        if np.any(clip[:, 3] <= 1e-6):
            return None, view  # a point behind the eye: far too close
        return clip[:, :2] / clip[:, 3:4], view

    def place(distance: float) -> tuple[np.ndarray, float]:
        """The centred target at this distance and how far the points' image reaches (share of ``half``)."""
        target = box_centre.copy()
        for _ in range(8):  # the image's centre moves almost linearly with the target: a few steps converge
            ndc, view = project(target, distance)
            if ndc is None:
                return target, math.inf
            off = (ndc.min(axis=0) + ndc.max(axis=0)) / 2 - centre  # the image's centre, from the viewport's
            # moving the target by s along the camera's right (up) axis moves the image by
            # -s * P[0,0] (P[1,1]) / distance in x (y)
            right, up = view[0, :3], view[1, :3]
            target = target + right * off[0] * distance / proj[0, 0] + up * off[1] * distance / proj[1, 1]
        ndc, _ = project(target, distance)
        if ndc is None:
            return target, math.inf
        # from the viewport's centre to the furthest image point, whatever centring is left over
        reach = float(np.max(np.maximum(ndc.max(axis=0) - centre, centre - ndc.min(axis=0)) / half))
        return target, reach

    radius = float(np.linalg.norm(hi - lo)) / 2
    near, far = 1e-3, max(radius, 0.1) * 50
    for _ in range(50):
        mid = (near + far) / 2
        if place(mid)[1] > 1.0:
            near = mid
        else:
            far = mid
    target, _ = place(far)
    return CameraView(far, yaw, pitch, (float(target[0]), float(target[1]), float(target[2])))


def cell_points(pb: Any, bodies: Iterable[int], client: int) -> np.ndarray:
    """The corners of every link's world bounding box, every body (n x 3, m): what the camera must see.

    Corners of each link rather than of one box round the whole cell: a box round an arm
    that leans over the table would frame much empty air above the table's far end.
    """
    points = []
    for body in bodies:
        for link in range(-1, pb.getNumJoints(body, physicsClientId=client)):
            a, b = pb.getAABB(body, link, physicsClientId=client)
            points.append(_corners(a, b)[:, :3])
    if not points:
        return _corners([-0.5, -0.5, 0.0], [0.5, 0.5, 0.5])[:, :3]  # an empty cell: a 1 m box at the origin
    return np.concatenate(points)


def frame_cell(pb: Any, bodies: Iterable[int], client: int, *, panel: bool = False) -> CameraView:
    """Point the open window's camera at the cell, as close as fits (beside the panel if it shows)."""
    points = cell_points(pb, bodies, client)
    width, height, _, projection = pb.getDebugVisualizerCamera(physicsClientId=client)[:4]
    viewport = Viewport.inside_margins(width, height, PANEL_MARGINS) if panel else Viewport()
    view = fit_view(pb, points, projection, viewport)
    _set_camera(pb, view, client)
    return view


#: the camera PyBullet's window starts with (yaw, pitch, distance, target); its start-up can put it
#: back after robocell framed the cell
STARTUP_CAMERA = (50.0, -35.0, 5.0, (0.0, 0.0, 0.0))


def camera_was_reset(pb: Any, client: int) -> bool:
    """True when the window shows PyBullet's start-up camera again (not one a user moved)."""
    yaw, pitch, distance, target = pb.getDebugVisualizerCamera(physicsClientId=client)[8:12]
    y0, p0, d0, t0 = STARTUP_CAMERA
    return bool(abs(yaw - y0) < 1e-3 and abs(pitch - p0) < 1e-3 and abs(distance - d0) < 1e-3
                and np.allclose(target, t0, atol=1e-6))


def set_camera(pb: Any, view: CameraView, client: int) -> None:
    """Set the window's camera to ``view`` and wait until the window reports it."""
    _set_camera(pb, view, client)


def _set_camera(pb: Any, view: CameraView, client: int) -> None:
    """Set the camera and wait until the window shows it.

    The window's thread applies a camera reset when it draws its next frame, and one sent
    before its very first frame is lost: so the reset is repeated until the window reports it.
    """
    deadline = time.monotonic() + CAMERA_DEADLINE
    while True:
        pb.resetDebugVisualizerCamera(view.distance, view.yaw, view.pitch, list(view.target), physicsClientId=client)
        yaw, pitch, distance, target = pb.getDebugVisualizerCamera(physicsClientId=client)[8:12]
        if abs(distance - view.distance) < 1e-3 and abs(yaw - view.yaw) < 1e-2 and abs(pitch - view.pitch) < 1e-2 \
                and np.allclose(target, view.target, atol=1e-3):
            return
        if time.monotonic() > deadline:
            raise BackendError(f"the PyBullet window did not take the camera position within {CAMERA_DEADLINE:g} s "
                               "(is it drawing at all?); run without --gui")
        time.sleep(CAMERA_POLL)


def show_sliders(pb: Any, client: int) -> None:
    """Show the panel of user debug parameters (sliders, buttons), without the camera previews."""
    for flag in (pb.COV_ENABLE_RGB_BUFFER_PREVIEW, pb.COV_ENABLE_DEPTH_BUFFER_PREVIEW,
                 pb.COV_ENABLE_SEGMENTATION_MARK_PREVIEW):
        pb.configureDebugVisualizer(flag, 0, physicsClientId=client)
    pb.configureDebugVisualizer(pb.COV_ENABLE_GUI, 1, physicsClientId=client)


__all__ = ["PANEL_MARGINS", "CameraView", "REMEDY", "Viewport", "cell_points", "check_display", "display_held", "display_problem", "fit_view", "frame_cell",
           "show_sliders", "camera_was_reset", "set_camera"]
