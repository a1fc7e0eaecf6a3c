"""``robocell learn --plot``: demonstration, reproduction and a generalisation in one picture."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from spatialmath import SE3

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from robocell.cellfile.spec import CellSpec
    from robocell.skills.learning.learn import LearnResult

# the generalisation drawn: object and target moved by these (m, rad), within the benchmark's ranges
OBJECT_SHIFT = (0.08, -0.06, math.radians(30))
TARGET_SHIFT = (-0.06, 0.05, math.radians(-25))
COLOURS = {"approach": "tab:blue", "transport": "tab:orange", "retreat": "tab:green"}


def plot(result: LearnResult, spec: CellSpec, out: str | Path) -> Path:
    """Write a PNG: 3-D TCP paths (left) and height along each path (right)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    from robocell.skills.learning.run import plan_world

    task = result.tasks[0]
    skill = result.skill
    demo = task.demo
    start = SE3(demo.tcp[0], check=False)
    obj_spec = spec.object(task.object)
    repro = plan_world(skill, obj_spec, task.object_pose, task.target_pose, start)
    dx, dy, dyaw = OBJECT_SHIFT
    T_obj = SE3.Trans(dx, dy, 0) * task.object_pose * SE3.Rz(dyaw)
    tx, ty, tyaw = TARGET_SHIFT
    T_tgt = SE3.Trans(tx, ty, 0) * task.target_pose * SE3.Rz(tyaw)
    general = plan_world(skill, obj_spec, T_obj, T_tgt, start)

    fig = plt.figure(figsize=(13, 5.5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    side = fig.add_subplot(1, 2, 2)
    p = demo.tcp[:, :3, 3]
    ax.plot(p[:, 0], p[:, 1], p[:, 2], color="0.35", lw=3, alpha=0.45, label="demonstration")
    s_demo = _arc(p)
    side.plot(s_demo, p[:, 2], color="0.35", lw=3, alpha=0.45, label="demonstration")
    for label, paths, style in (("reproduction", repro, "-"), ("generalisation", general, "--")):
        pts = np.concatenate([np.array([T.t for T in path]) for _, path in paths])
        s_all = _arc(pts)
        k = 0
        for name, path in paths:
            q = np.array([T.t for T in path])
            ax.plot(q[:, 0], q[:, 1], q[:, 2], style, color=COLOURS.get(name, "k"), lw=1.5,
                    label=f"{label}: {name}")
            side.plot(s_all[k:k + len(q)], q[:, 2], style, color=COLOURS.get(name, "k"), lw=1.5,
                      label=f"{label}: {name}")
            k += len(q)
    for T, mark, what in ((task.object_pose, "s", f"{task.object} (shown)"), (task.target_pose, "^", f"{task.target} (shown)"),
                          (T_obj, "s", f"{task.object} (moved)"), (T_tgt, "^", f"{task.target} (moved)")):
        filled = "shown" in what
        ax.scatter(*T.t, marker=mark, s=60, facecolors="k" if filled else "none", edgecolors="k")
        ax.text(*T.t, f"  {what}", fontsize=7)
    for fx in spec.fixtures:
        if fx.is_obstacle:
            _box(ax, fx.pose.se3(), fx.size)
    _label(ax, side, result)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _label(ax: Any, side: Any, result: LearnResult) -> None:
    """Axis labels, titles (the fit error) and legends of both panels."""
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.set_title(f"{result.skill.name}: TCP paths (world)")
    ax.legend(fontsize=6, loc="upper left")
    side.set_xlabel("distance along the path (m)")
    side.set_ylabel("TCP height z (m)")
    side.set_title(f"fit error {result.fit_rms * 1000:.1f} mm RMS, {result.fit_max * 1000:.1f} mm max "
                   f"({result.skill.method}, {len(result.tasks)} demo(s))")
    side.grid(alpha=0.3)
    side.legend(fontsize=6)


def _arc(p: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])


def _box(ax: Axes, T: SE3, size: tuple[float, ...]) -> None:
    """Wire-frame of an obstacle standing on its pose."""
    x, y, h = size[0] / 2, size[1] / 2, size[2]
    corners = np.array([[sx * x, sy * y, z] for z in (0.0, h) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    w = (np.asarray(T.A) @ np.c_[corners, np.ones(8)].T).T[:, :3]
    for a, b in ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)):
        ax.plot(*zip(w[a], w[b]), color="firebrick", lw=1)  # a 3-D Axes: x, y and z
