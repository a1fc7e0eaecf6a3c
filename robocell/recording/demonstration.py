"""A recorded demonstration: what the arm and gripper did, and where things were.

The file is a NumPy ``.npz`` archive of plain arrays (never pickles: it is
loaded with ``allow_pickle=False``), so any tool can read it; the layout is
documented in ``docs/demonstrations.md``.  :meth:`Demonstration.load` checks
everything a learner relies on and names the field, the value and the rule
when a file is empty, corrupt or inconsistent.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from spatialmath import SE3

from robocell.errors import DemoError

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec

FORMAT = "robocell-demo"
FORMAT_VERSION = 1
MIN_SAMPLES = 10
# Gripper events: the width must move this far in one direction to count (m); it
# rejects sensor noise and the few-mm squeeze of a grasp settling.
EVENT_THRESHOLD = 0.004
# Width changes smaller than this (m) still count as the plateau before a motion.
PLATEAU_TOLERANCE = 0.0005

EventKind = Literal["close", "open"]


@dataclass(frozen=True)
class GripperEvent:
    """The gripper started closing or opening at sample ``index`` (time ``t`` s)."""

    t: float
    kind: EventKind
    index: int


@dataclass(frozen=True)
class Provenance:
    """Where a demonstration came from; written into the file and into learned skills."""

    cell: str  # the cell's name (``name:`` in the cell file)
    arm: str  # the arm's name in the cell
    arm_model: str  # the arm's model (panda, kuka_iiwa, ur5e, ...)
    joint_names: tuple[str, ...]
    date: str  # ISO 8601, UTC
    source: str  # "script:PATH", "teleop", "free-drive", ...
    backend: str  # "sim" or the remote address
    robocell_version: str
    rate: float  # Hz asked for
    cell_file: str = ""  # path as given when recording
    cell_sha256: str = ""  # of the cell file's bytes, when known

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["joint_names"] = list(self.joint_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Provenance:
        need = ("cell", "arm", "arm_model", "joint_names", "date", "source", "backend", "robocell_version", "rate")
        missing = [k for k in need if k not in d]
        if missing:
            raise DemoError(f"{where}: the provenance ('meta') lacks {', '.join(missing)}; "
                            "record the demonstration again with `robocell record`")
        try:
            return cls(cell=str(d["cell"]), arm=str(d["arm"]), arm_model=str(d["arm_model"]),
                       joint_names=tuple(str(j) for j in d["joint_names"]), date=str(d["date"]),
                       source=str(d["source"]), backend=str(d["backend"]),
                       robocell_version=str(d["robocell_version"]), rate=float(d["rate"]),
                       cell_file=str(d.get("cell_file", "")), cell_sha256=str(d.get("cell_sha256", "")))
        except (TypeError, ValueError) as exc:
            raise DemoError(f"{where}: the provenance ('meta') is malformed ({exc}); record it again") from None


@dataclass(frozen=True, eq=False)
class Demonstration:
    """Samples of one demonstration (SI units, world frame) plus the scene and provenance.

    ``tcp`` holds 4x4 homogeneous TCP poses; ``objects`` the objects' world poses
    when recording started and ``objects_end`` when it stopped; ``fixtures``
    the fixtures' poses (they may have been moved or surveyed since).
    """

    t: np.ndarray  # (N,) s, from 0, strictly increasing
    q: np.ndarray  # (N, n) rad
    tcp: np.ndarray  # (N, 4, 4) world
    gripper_width: np.ndarray  # (N,) m
    grasped: np.ndarray  # (N,) bool
    objects: dict[str, SE3]
    objects_end: dict[str, SE3]
    fixtures: dict[str, SE3]
    provenance: Provenance
    events: tuple[GripperEvent, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.events:
            object.__setattr__(self, "events", detect_events(self.t, self.gripper_width))

    # ---- figures ---------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.t.size)

    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0])

    @property
    def achieved_rate(self) -> float:
        """Median sampling rate, Hz."""
        return float(1.0 / np.median(np.diff(self.t)))

    def lost_samples(self, rate: float | None = None) -> int:
        """Samples missing on a grid of ``rate`` Hz (default: the rate asked for): gaps over 1.5 periods."""
        period = 1.0 / (rate or self.provenance.rate)
        gaps = np.diff(self.t) / period
        return int(np.sum(np.maximum(np.round(gaps[gaps > 1.5]) - 1, 0)))

    def tcp_positions(self) -> np.ndarray:
        return self.tcp[:, :3, 3]

    # ---- checks -------------------------------------------------------------------
    def check_cell(self, spec: CellSpec, arm: str | None = None, where: str = "demonstration") -> None:
        """Raise DemoError unless this demonstration was recorded on this cell's arm."""
        p = self.provenance
        if p.cell != spec.name:
            raise DemoError(f"{where} was recorded on cell '{p.cell}', not on '{spec.name}'; "
                            "learn from demonstrations of the cell the skill will run on")
        names = [a.name for a in spec.arms]
        a = arm or p.arm
        if a not in names:
            raise DemoError(f"{where} was recorded with arm '{p.arm}', which cell '{spec.name}' does not have "
                            f"(its arms: {', '.join(names)})")
        model = arm_model_name(spec, a)
        if p.arm_model != model:
            raise DemoError(f"{where} was recorded on a {p.arm_model} arm; arm '{a}' of cell "
                            f"'{spec.name}' is a {model}; record it on this arm")

    # ---- file ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` file (compressed); returns its path."""
        path = Path(path)
        if path.suffix != ".npz":
            raise DemoError(f"demonstration file '{path}': use the .npz extension")
        path.parent.mkdir(parents=True, exist_ok=True)
        obj_names = sorted(self.objects)
        fx_names = sorted(self.fixtures)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, **self.provenance.to_dict()}
        np.savez_compressed(
            path,
            t=self.t, q=self.q, tcp=self.tcp, gripper_width=self.gripper_width,
            grasped=self.grasped.astype(bool),
            event_t=np.array([e.t for e in self.events], dtype=float),
            event_kind=np.array([e.kind for e in self.events], dtype="<U5"),
            event_index=np.array([e.index for e in self.events], dtype=np.int64),
            object_names=np.array(obj_names, dtype=str),
            object_poses=_stack([self.objects[n] for n in obj_names]),
            object_poses_end=_stack([self.objects_end.get(n, self.objects[n]) for n in obj_names]),
            fixture_names=np.array(fx_names, dtype=str),
            fixture_poses=_stack([self.fixtures[n] for n in fx_names]),
            meta=np.array(json.dumps(meta)),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> Demonstration:
        """Read and check a demonstration file; raises DemoError saying what is wrong."""
        path = Path(path)
        where = f"demonstration '{path}'"
        if not path.is_file():
            raise DemoError(f"{where} does not exist; record one with `robocell record --out {path}`")
        if path.stat().st_size == 0:
            raise DemoError(f"{where} is empty (0 bytes); record it again")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DemoError(f"{where} is not a readable .npz archive ({type(exc).__name__}: {exc}); "
                            "it is corrupt or not a demonstration; record it again") from None
        return cls._from_arrays(data, where)

    @classmethod
    def _from_arrays(cls, d: dict[str, np.ndarray], where: str) -> Demonstration:
        need = ("t", "q", "tcp", "gripper_width", "grasped", "object_names", "object_poses", "meta")
        missing = [k for k in need if k not in d]
        if missing:
            raise DemoError(f"{where} lacks the array(s) {', '.join(missing)}; it is not a robocell "
                            "demonstration (see docs/demonstrations.md)")
        try:
            meta = json.loads(str(d["meta"]))
        except (json.JSONDecodeError, TypeError) as exc:
            raise DemoError(f"{where}: 'meta' is not JSON ({exc}); the file is corrupt") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DemoError(f"{where}: 'meta' does not say format '{FORMAT}'; not a robocell demonstration")
        if meta.get("version") != FORMAT_VERSION:
            raise DemoError(f"{where} has format version {meta.get('version')!r}; this robocell reads version "
                            f"{FORMAT_VERSION}; record it again or upgrade robocell")
        prov = Provenance.from_dict(meta, where)
        t = _array(d, "t", where, ndim=1)
        n = t.size
        if n < MIN_SAMPLES:
            raise DemoError(f"{where} has {n} samples; at least {MIN_SAMPLES} are needed (was it stopped at once?)")
        q = _array(d, "q", where, shape=(n, len(prov.joint_names)))
        tcp = _array(d, "tcp", where, shape=(n, 4, 4))
        width = _array(d, "gripper_width", where, shape=(n,))
        grasped = np.asarray(d["grasped"]).astype(bool).reshape(-1)
        if grasped.size != n:
            raise DemoError(f"{where}: 'grasped' has {grasped.size} samples, 't' has {n}; the file is corrupt")
        dt = np.diff(t)
        if np.any(dt <= 0):
            i = int(np.argmax(dt <= 0))
            raise DemoError(f"{where}: times must increase; t[{i + 1}] = {t[i + 1]:.4f} s follows "
                            f"t[{i}] = {t[i]:.4f} s; the file is corrupt")
        objects = _poses(d, "object_names", "object_poses", where)
        objects_end = _poses(d, "object_names", "object_poses_end", where) if "object_poses_end" in d else objects
        fixtures = _poses(d, "fixture_names", "fixture_poses", where) if "fixture_names" in d else {}
        events: tuple[GripperEvent, ...] = ()
        if "event_t" in d and np.asarray(d["event_t"]).size:
            et = _array(d, "event_t", where, ndim=1)
            kinds = [str(k) for k in np.asarray(d["event_kind"]).reshape(-1)]
            idx = np.asarray(d["event_index"]).astype(int).reshape(-1)
            if len(kinds) != et.size or idx.size != et.size or any(k not in ("close", "open") for k in kinds):
                raise DemoError(f"{where}: the gripper events (event_t, event_kind, event_index) are "
                                "inconsistent; the file is corrupt")
            if np.any(idx < 0) or np.any(idx >= n):
                raise DemoError(f"{where}: a gripper event points outside the samples; the file is corrupt")
            events = tuple(GripperEvent(float(a), "close" if k == "close" else "open", int(i))  # checked above
                           for a, k, i in zip(et, kinds, idx))
        return cls(t=t - t[0], q=q, tcp=tcp, gripper_width=width, grasped=grasped, objects=objects,
                   objects_end=objects_end, fixtures=fixtures, provenance=prov,
                   events=events)


def arm_model_name(spec: CellSpec, arm: str) -> str:
    """The arm's model name for provenance: the built-in model, or the URDF a custom arm is built from."""
    a = spec.arm(arm)
    return a.model if a.model is not None else f"urdf:{Path(str(a.urdf)).name}"


def detect_events(t: np.ndarray, width: np.ndarray, threshold: float = EVENT_THRESHOLD,
                  tol: float = PLATEAU_TOLERANCE) -> tuple[GripperEvent, ...]:
    """Gripper close/open events from the width signal alone, as any gripper reports it.

    An event is a monotone change of more than ``threshold`` m; it is dated at
    the last sample of the plateau before the change (when the fingers started
    to move, i.e. when the operator commanded them).
    """
    w = np.asarray(width, dtype=float).reshape(-1)
    events: list[GripperEvent] = []
    if w.size == 0:
        return ()
    hi = lo = 0  # start of the current high / low plateau
    state: str | None = None
    for i in range(1, w.size):
        if w[i] >= w[hi] - tol:
            hi = i
        if w[i] <= w[lo] + tol:
            lo = i
        if state != "closed" and w[hi] - w[i] > threshold:
            events.append(GripperEvent(float(t[hi]), "close", hi))
            state, lo = "closed", i
        elif state != "open" and w[i] - w[lo] > threshold:
            events.append(GripperEvent(float(t[lo]), "open", lo))
            state, hi = "open", i
    return tuple(events)


def _stack(poses: list[SE3]) -> np.ndarray:
    if not poses:
        return np.zeros((0, 4, 4))
    return np.stack([np.asarray(p.A, dtype=float) for p in poses])


def _array(d: dict[str, np.ndarray], key: str, where: str, *, ndim: int | None = None,
           shape: tuple[int, ...] | None = None) -> np.ndarray:
    try:
        a = np.asarray(d[key], dtype=float)
    except (TypeError, ValueError):
        raise DemoError(f"{where}: '{key}' is not numeric; the file is corrupt") from None
    if ndim is not None and a.ndim != ndim:
        raise DemoError(f"{where}: '{key}' has {a.ndim} dimensions, expected {ndim}; the file is corrupt")
    if shape is not None and a.shape != shape:
        raise DemoError(f"{where}: '{key}' has shape {a.shape}, expected {shape}; the file is corrupt "
                        "or was recorded on another arm")
    if not np.all(np.isfinite(a)):
        i = np.argwhere(~np.isfinite(a))[0]
        raise DemoError(f"{where}: '{key}'{list(map(int, i))} = {a[tuple(i)]} is not finite; the file is corrupt")
    return a


def _poses(d: dict[str, np.ndarray], names_key: str, poses_key: str, where: str) -> dict[str, SE3]:
    names = [str(n) for n in np.asarray(d[names_key]).reshape(-1)]
    poses = _array(d, poses_key, where, shape=(len(names), 4, 4)) if names else np.zeros((0, 4, 4))
    out = {}
    for n, m in zip(names, poses):
        if not np.allclose(m[3], [0, 0, 0, 1]) or not np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-4):
            raise DemoError(f"{where}: the pose of '{n}' in '{poses_key}' is not a rigid transform; corrupt file")
        out[n] = SE3(m, check=False)
    return out


def iso_now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def file_sha256(path: str | Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


__all__ = ["Demonstration", "arm_model_name", "GripperEvent", "Provenance", "detect_events", "file_sha256", "iso_now"]
