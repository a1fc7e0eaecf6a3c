"""Writing the pictures robocell takes (``robocell run --picture``, previews, eval and test failure shots).

Any backend's ``render()`` gives an RGB array; saving it needs no simulator, so it lives with the contracts
(skills save previews without importing ``robocell.sim``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB image (height x width x 3, uint8) to ``path`` as PNG, creating its folder; return the path."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image)
    return path
