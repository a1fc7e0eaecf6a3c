"""Learn a pick-and-place skill from one or more demonstrations."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robocell.recording.demonstration import Demonstration, file_sha256, iso_now
from robocell.errors import DemoError, SkillError
from robocell.skills.learning.model import LearnedSkill, MotionModel
from robocell.skills.learning.primitive import Primitive
from robocell.skills.learning.segment import TaskDemo, pq_of, segment_demo

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec

METHODS = ("dmp", "promp")
CHECK_DT = 0.01  # s: the reproduction check rolls out at the rate the skill runs at (coarser is visibly less exact)


@dataclass(frozen=True)
class LearnResult:
    skill: LearnedSkill
    tasks: tuple[TaskDemo, ...]
    fit_rms: float  # m, TCP position, over every segment of every demonstration
    fit_max: float  # m
    fit_rms_per_demo: tuple[float, ...]
    # m: the rolled-out primitive (a ProMP: its conditioned mean) against each demonstration; for a
    # DMP the fit itself, for a ProMP mostly how far the demonstrations lie from their average
    mean_rms_per_demo: tuple[float, ...]
    learn_time: float  # s: segmentation, fitting and the reproduction check (files excluded)


def load_demos(paths: list[str | Path]) -> list[Demonstration]:
    if not paths:
        raise DemoError("give at least one demonstration file (.npz), e.g. `robocell learn demo.npz --name NAME`")
    return [Demonstration.load(p) for p in paths]


def learn(demos: list[Demonstration], spec: CellSpec, *, name: str, description: str = "",
          method: str | None = None, object: str | None = None, target: str | None = None,
          files: list[str] | None = None) -> LearnResult:
    """Segment, check that every demonstration shows the same task, fit the primitives and measure the fit."""
    from threadpoolctl import threadpool_limits

    if not name.isidentifier():
        raise SkillError(f"skill name {name!r}: use letters, digits and _ (a Python identifier), e.g. carry_over_wall")
    files = files or [f"demonstration {i + 1}" for i in range(len(demos))]
    method = method or ("dmp" if len(demos) == 1 else "promp")
    if method not in METHODS:
        raise SkillError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "dmp" and len(demos) > 1:
        raise SkillError(f"--method dmp learns from one demonstration; {len(demos)} were given: "
                         "use --method promp (the default for several) or give one file")
    # small matrices: one BLAS thread is faster than several fighting over two cores
    with threadpool_limits(1):
        t0 = time.perf_counter()
        for d, f in zip(demos, files):
            d.check_cell(spec, where=f"demonstration '{f}'")
        tasks = [segment_demo(d, spec, object=object, target=target, where=f"demonstration '{f}'")
                 for d, f in zip(demos, files)]
        _check_same_task(tasks, files)
        motions = []
        for seg_name in [s.name for s in tasks[0].segments]:
            segs = [t.segment(seg_name) for t in tasks]
            ts = [s.t for s in segs if s is not None]
            pqs = [s.pq for s in segs if s is not None]
            prim = Primitive.fit_dmp(ts[0], pqs[0]) if method == "dmp" else Primitive.fit_promp(ts, pqs)
            motions.append(MotionModel(seg_name, segs[0].frame if segs[0] else "target", prim,
                                       mean_pose([s.goal for s in segs if s is not None])))
        rms_each, max_err, mean_each = _fit_error(tasks, motions)
        elapsed = time.perf_counter() - t0
    first = tasks[0]
    skill = LearnedSkill(
        name=name, description=description or f"{name}: pick an object and put it at a target, as demonstrated",
        method=method, cell=spec.name, arm_model=demos[0].provenance.arm_model,
        object_example=first.object, target_example=first.target, target_kind=first.target_kind,
        grasp=mean_pose([pq_of(t.grasp) for t in tasks]), release=mean_pose([pq_of(t.release) for t in tasks]),
        demo_grasp_world=pq_of(first.object_pose * first.grasp), motions=tuple(motions),
        examples=(description,) if description else (),
        provenance={
            "learned": iso_now(), "method": method, "robocell_version": _version(),
            "fit_error_rms_m": float(np.sqrt(np.mean(np.square(rms_each)))), "fit_error_max_m": max_err,
            "mean_path_error_rms_m": float(np.sqrt(np.mean(np.square(mean_each)))),
            "learn_time_s": elapsed,
            "demos": [{"file": str(f), "sha256": file_sha256(f), "cell": d.provenance.cell, "arm": d.provenance.arm,
                       "date": d.provenance.date, "source": d.provenance.source, "samples": d.n_samples,
                       "rate_hz": d.achieved_rate, "fit_error_rms_m": r}
                      for f, d, r in zip(files, demos, rms_each)],
        },
    )
    rms = float(np.sqrt(np.mean(np.square(rms_each))))
    return LearnResult(skill, tuple(tasks), rms, max_err, tuple(rms_each), tuple(mean_each), elapsed)


def mean_pose(pqs: list[np.ndarray]) -> np.ndarray:
    """Average of poses: mean position, sign-aligned normalised mean quaternion (fine for nearby rotations)."""
    a = np.asarray(pqs, dtype=float)
    q = a[:, 3:] * np.where(a[:, 3:] @ a[0, 3:] < 0, -1.0, 1.0)[:, None]
    m = q.mean(axis=0)
    return np.concatenate([a[:, :3].mean(axis=0), m / np.linalg.norm(m)])


def _check_same_task(tasks: list[TaskDemo], files: list[str]) -> None:
    a = tasks[0]
    for t, f in zip(tasks[1:], files[1:]):
        if (t.object, t.target) != (a.object, a.target) or [s.name for s in t.segments] != [s.name for s in a.segments]:
            raise DemoError(
                f"the demonstrations show different tasks: '{files[0]}' puts {a.object} into {a.target} "
                f"({', '.join(s.name for s in a.segments)}), '{f}' puts {t.object} into {t.target} "
                f"({', '.join(s.name for s in t.segments)}); learn each task from its own demonstrations")


def reproduce(task: TaskDemo, motion: MotionModel) -> tuple[np.ndarray, np.ndarray] | None:
    """The primitive rolled out between the demonstrated segment's own start and end (frame of the segment)."""
    seg = task.segment(motion.name)
    if seg is None:
        return None
    return motion.primitive.rollout_positions(seg.pq[0], seg.pq[-1], dt=CHECK_DT)


def _fit_error(tasks: list[TaskDemo], motions: list[MotionModel]) -> tuple[list[float], float, list[float]]:
    """Per demonstration: the fit's RMS error, the worst error of all, and the rolled-out path's RMS error.

    Paths are compared at the same phase (a ProMP's duration is the demonstrations'
    mean).  A DMP's fit is its roll-out between the segment's own start and end; a
    ProMP's is each demonstration's own weights (see ``Primitive.demo_positions``).
    """
    fit, mean, worst = [], [], 0.0
    index = {m.name: 0 for m in motions}  # a demonstration's row among a ProMP's weights
    for task in tasks:
        sq_fit: list[np.ndarray] = []
        sq_mean: list[np.ndarray] = []
        for m in motions:
            seg = task.segment(m.name)
            out = reproduce(task, m)
            if seg is None or out is None:
                continue
            t, y = out
            phase = np.linspace(0.0, 1.0, len(seg.t))
            yi = np.column_stack([np.interp(phase, t / t[-1], y[:, j]) for j in range(3)])
            err_mean = np.linalg.norm(yi - seg.pq[:, :3], axis=1)
            if m.primitive.kind == "promp":
                err = np.linalg.norm(m.primitive.demo_positions(index[m.name], phase) - seg.pq[:, :3], axis=1)
                index[m.name] += 1
            else:
                err = err_mean
            sq_fit.append(err**2)
            sq_mean.append(err_mean**2)
            worst = max(worst, float(err.max()))
        fit.append(float(np.sqrt(np.mean(np.concatenate(sq_fit)))))
        mean.append(float(np.sqrt(np.mean(np.concatenate(sq_mean)))))
    return fit, worst, mean


def _version() -> str:
    import robocell

    return robocell.__version__


__all__ = ["LearnResult", "learn", "load_demos", "mean_pose", "reproduce"]
