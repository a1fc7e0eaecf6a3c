"""Headless pictures of a simulated cell: single frames and GIF recordings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robocell.core.images import save_png  # noqa: F401  (its old place; it lives with the contracts now)
from robocell.errors import ConfigError

if TYPE_CHECKING:
    from robocell.cellfile.spec import CameraSpec
    from robocell.sim.world import SimWorld


def find_camera(world: SimWorld, name: str | None) -> CameraSpec:
    cams = world.spec.cameras
    if not cams:
        raise ConfigError("the cell file defines no cameras; add one under 'cameras'")
    if name is None:
        return cams[0]
    for cam in cams:
        if cam.name == name:
            return cam
    raise ConfigError(
        f"unknown camera '{name}'; the cell's cameras are: {', '.join(c.name for c in cams)}"
    )


def render(world: SimWorld, camera: str | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB image (H, W, 3, uint8) from a named camera, with the CPU renderer (no display needed)."""
    cam = find_camera(world, camera)
    pb = world.pb
    w, h = size if size is not None else (cam.width, cam.height)
    view = pb.computeViewMatrix(list(cam.eye), list(cam.target), list(cam.up))
    proj = pb.computeProjectionMatrixFOV(cam.fov, w / h, 0.02, 10.0)
    _, _, rgba, _, _ = pb.getCameraImage(
        w, h, view, proj, renderer=pb.ER_TINY_RENDERER, physicsClientId=world.client
    )
    return np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3]


class GifRecorder:
    """Captures frames at ``fps`` of simulated time while the world steps."""

    def __init__(self, world: SimWorld, path: str | Path, camera: str | None = None,
                 fps: float = 10.0, size: tuple[int, int] = (320, 240)) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".gif":
            raise ConfigError(f"--record {path}: the recording must be a .gif file")
        find_camera(world, camera)  # fail early on an unknown camera
        self.camera = camera
        self.size = size
        self.fps = fps
        self.every = max(1, int(round(1.0 / (fps * world.timestep))))
        self.interval = self.every * world.timestep  # s of simulated time between two frames
        self.frames: list[np.ndarray] = []
        self._count = 0
        world.add_observer(self._observe)
        self.frames.append(render(world, camera, size))

    def _observe(self, world: SimWorld) -> None:
        self._count += 1
        if self._count % self.every == 0:
            self.frames.append(render(world, self.camera, self.size))

    def save(self) -> Path:
        import imageio.v3 as iio

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Pillow's GIF writer takes the frame delay in milliseconds (seconds gave 0 ms: a frozen GIF)
        iio.imwrite(self.path, np.stack(self.frames), plugin="pillow", duration=round(self.interval * 1000),
                    loop=0)
        return self.path
