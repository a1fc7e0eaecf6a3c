"""Cut a pick-and-place demonstration at its gripper events and express each part where it acts.

approach  (start -> gripper closes)    ends at the grasp, relative to the picked object
grasp     (gripper closes)
transport (after the grasp -> opens)    ends at the release, relative to the target
release   (gripper opens)
retreat   (after the release -> end)    ends relative to the target

Where a segment *ends* is stored relative to the object or target it acts on;
its *shape* is stored in the segment's path frame: origin at the segment's
start, z up, x pointing (horizontally) from start to end.  A DMP's forcing term
is fixed in the frame it was learned in; in the path frame the shape turns with
the task (object and target anywhere around the arm) while a lift over a wall
keeps its height, because z stays vertical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from spatialmath import SE3
from spatialmath.base import r2q

from robocell.recording.demonstration import Demonstration, GripperEvent
from robocell.errors import DemoError
from robocell.skills.geometry import yaw_of

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec, FixtureSpec

GRASP_REACH = 0.06  # m: the picked object's centre must be this close to the TCP when the gripper closes
PATH_MIN_RUN = 0.05  # m: a segment moving less than this horizontally takes its heading from its anchor
STILL_POSITION = 0.001  # m: samples closer than this to a segment's end point count as standing still
STILL_ROTATION = 0.01  # rad
MIN_SEGMENT_SAMPLES = 5


@dataclass(frozen=True)
class Segment:
    """The TCP path of one part of the task, in the frame of what it acts on."""

    name: str  # approach | transport | retreat
    frame: str  # object | target: what the segment's end is relative to
    t: np.ndarray  # (k,) s from 0
    pq: np.ndarray  # (k, 7) position (m) + quaternion (w, x, y, z) in the segment's path frame
    goal: np.ndarray  # (7,) pq of the segment's last pose in the object's or target's frame
    world: np.ndarray  # (k, 3) the same path's TCP positions in the world (for plots and errors)


@dataclass(frozen=True)
class TaskDemo:
    """A demonstration cut into segments, with what it picked and where it put it."""

    demo: Demonstration
    object: str
    target: str
    target_kind: str  # fixture | slot | object | frame
    object_pose: SE3  # world, at the start
    target_pose: SE3  # world, the target frame during the demonstration
    grasp: SE3  # TCP at the grasp, in the object frame
    release: SE3  # TCP at the release, in the target frame
    segments: tuple[Segment, ...]

    def segment(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)


def pq_of(T: SE3 | np.ndarray) -> np.ndarray:
    A = np.asarray(T.A if isinstance(T, SE3) else T, dtype=float)
    return np.concatenate([A[:3, 3], r2q(A[:3, :3])])


def pq_array(mats: np.ndarray) -> np.ndarray:
    """pq (N, 7) of N 4x4 poses at once (quaternions sign-continuous)."""
    from scipy.spatial.transform import Rotation

    from robocell.skills.learning.primitive import align_quaternions

    xyzw = Rotation.from_matrix(mats[:, :3, :3]).as_quat()
    return align_quaternions(np.column_stack([mats[:, :3, 3], xyzw[:, 3], xyzw[:, :3]]))


def se3_of(pq: np.ndarray) -> SE3:
    from spatialmath.base import q2r

    return SE3.Rt(q2r(np.asarray(pq[3:], dtype=float) / np.linalg.norm(pq[3:])), np.asarray(pq[:3]), check=False)


def pick_place_events(demo: Demonstration, where: str) -> tuple[GripperEvent, GripperEvent]:
    """The one close and the open that follows it; a clear error for anything else."""
    events = list(demo.events)
    while events and events[0].kind == "open":
        events.pop(0)  # an operator opening the hand fully before starting is not part of the task
    closes = [e for e in events if e.kind == "close"]
    if not closes:
        raise DemoError(f"{where} has no gripper events: the gripper never closed (width stayed within "
                        f"{demo.gripper_width.min() * 1000:.1f}-{demo.gripper_width.max() * 1000:.1f} mm). "
                        "Close the gripper on the object during the demonstration")
    if len(closes) > 1:
        times = ", ".join(f"{e.t:.2f} s" for e in closes)
        raise DemoError(f"{where} closes the gripper {len(closes)} times (at {times}); a learned skill is one "
                        "pick-and-place: record each pick-and-place as its own demonstration")
    close = closes[0]
    opens = [e for e in events if e.kind == "open" and e.t > close.t]
    if not opens:
        raise DemoError(f"{where} closes the gripper at {close.t:.2f} s but never opens it again: the object "
                        "is never released. Open the gripper at the target before stopping the recording")
    return close, opens[0]


def segment_demo(demo: Demonstration, spec: CellSpec, *, object: str | None = None,
                 target: str | None = None, where: str = "demonstration") -> TaskDemo:
    """Cut ``demo`` (recorded on the cell ``spec``) into approach, transport and retreat."""
    close, open_ = pick_place_events(demo, where)
    held = demo.grasped[close.index:open_.index + 1]
    if held.size and held.mean() < 0.5:
        raise DemoError(f"{where}: the gripper closed at {close.t:.2f} s but held nothing (no grasp was "
                        "detected until it opened); close it on the object")
    tcp = demo.tcp
    obj = object or _picked_object(demo, tcp[close.index][:3, 3], where)
    if obj not in demo.objects:
        raise DemoError(f"{where}: object '{obj}' is not in the demonstration (its objects: "
                        f"{', '.join(sorted(demo.objects))})")
    T_obj = demo.objects[obj]
    rest = demo.objects_end[obj] if obj in demo.objects_end else SE3(tcp[open_.index], check=False)
    tgt, kind = (target, target_kind(spec, target)) if target else _target(spec, demo, obj, rest.t, where)
    T_tgt = scene_frame(spec, tgt, demo)
    ic, io, n = close.index, open_.index, demo.n_samples
    segs = []
    for name, frame, lo, hi, F in (("approach", "object", 0, ic, T_obj), ("transport", "target", ic, io, T_tgt),
                                   ("retreat", "target", io, n - 1, T_tgt)):
        lo, hi = _moving_span(tcp, lo, hi)
        if hi - lo + 1 < MIN_SEGMENT_SAMPLES:
            if name == "retreat":
                continue  # the demonstration ended at the release: nothing to retreat
            raise DemoError(f"{where}: the {name} lasts {hi - lo + 1} samples ({demo.t[hi] - demo.t[lo]:.2f} s); "
                            "show the whole motion, moving the arm before and after each gripper event")
        P = path_frame(tcp[lo][:3, 3], tcp[hi][:3, 3], F)
        local = np.einsum("ij,kjl->kil", np.asarray(P.inv().A), tcp[lo:hi + 1])
        goal = pq_of(np.asarray(F.inv().A) @ tcp[hi])
        segs.append(Segment(name, frame, demo.t[lo:hi + 1] - demo.t[lo], pq_array(local), goal,
                            tcp[lo:hi + 1, :3, 3].copy()))
    return TaskDemo(demo, obj, tgt, kind, T_obj, T_tgt, SE3(T_obj.inv().A @ tcp[ic], check=False),
                    SE3(T_tgt.inv().A @ tcp[io], check=False), tuple(segs))


def path_frame(start: np.ndarray, end: np.ndarray, anchor: SE3) -> SE3:
    """Origin at ``start``, z up, x along the horizontal run from start to end (or the anchor's x if short)."""
    run = np.asarray(end[:2], dtype=float) - np.asarray(start[:2], dtype=float)
    if float(np.linalg.norm(run)) >= PATH_MIN_RUN:
        yaw = float(np.arctan2(run[1], run[0]))
    else:
        yaw = yaw_of(anchor)
    return SE3.Trans(np.asarray(start, dtype=float)) * SE3.Rz(yaw)


def _moving_span(tcp: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """Drop the samples at either end where the TCP stands still (waiting for the gripper)."""

    def still(idx: np.ndarray, ref: int) -> np.ndarray:
        dp = np.linalg.norm(tcp[idx, :3, 3] - tcp[ref, :3, 3], axis=1)
        c = (np.einsum("kij,ij->k", tcp[idx, :3, :3], tcp[ref, :3, :3]) - 1) / 2  # trace(R_k^T R_ref)
        return (dp < STILL_POSITION) & (np.arccos(np.clip(c, -1, 1)) < STILL_ROTATION)

    def run_length(mask: np.ndarray) -> int:
        return int(np.argmin(mask)) if not mask.all() else len(mask)

    a = lo + run_length(still(np.arange(lo + 1, hi + 1), lo))  # at most hi
    b = hi - run_length(still(np.arange(hi - 1, a - 1, -1), hi))  # at least a
    return a, b


def _picked_object(demo: Demonstration, p: np.ndarray, where: str) -> str:
    if not demo.objects:
        raise DemoError(f"{where} records no objects; the cell must declare the object that is picked")
    dist = {n: float(np.linalg.norm(T.t - p)) for n, T in demo.objects.items()}
    best = min(dist, key=dist.__getitem__)
    if dist[best] > GRASP_REACH:
        near = ", ".join(f"{n} {d * 100:.1f} cm" for n, d in sorted(dist.items(), key=lambda x: x[1])[:3])
        raise DemoError(f"{where}: the gripper closed {dist[best] * 100:.1f} cm from the nearest object "
                        f"({near}); no object was within {GRASP_REACH * 100:.0f} cm of the TCP. Grasp an object "
                        "of the cell, or name it with --object")
    return best


def target_kind(spec: CellSpec, name: str) -> str:
    names = {o.name for o in spec.objects}
    if name in names:
        return "object"
    for fx in spec.fixtures:
        if fx.name == name:
            return "fixture"
        if name in fx.slot_poses():
            return "slot"
    if any(f.name == name for f in spec.frames):
        return "frame"
    raise DemoError(f"target '{name}' is not an object, fixture, tray slot or frame of cell '{spec.name}'")


def _target(spec: CellSpec, demo: Demonstration, obj: str, p: np.ndarray, where: str) -> tuple[str, str]:
    """Where the object came to rest: a tray slot, a fixture, or on top of another object."""
    for fx in spec.fixtures:
        moved = _as_recorded(fx, demo)
        if not moved.contains(p):
            continue
        if fx.slots is not None:
            slots = moved.slot_poses()
            return min(slots, key=lambda s: float(np.linalg.norm(slots[s].t[:2] - p[:2]))), "slot"
        return fx.name, "fixture"
    for other, T in demo.objects.items():
        o = spec.object(other) if other in {x.name for x in spec.objects} else None
        if other == obj or o is None:
            continue
        if np.linalg.norm(T.t[:2] - p[:2]) < 0.5 * min(o.size[:2]) and p[2] > T.t[2]:
            return other, "object"
    raise DemoError(f"{where}: '{obj}' came to rest at {np.round(p, 3).tolist()} m, inside no fixture and on no "
                    "object; name the target with --target (a fixture, tray slot, object or frame)")


def _as_recorded(fx: FixtureSpec, demo: Demonstration) -> FixtureSpec:
    """The fixture where the demonstration recorded it (it may have been moved since the cell file)."""
    if fx.name not in demo.fixtures:
        return fx
    return fx.model_copy(update={"pose": type(fx.pose).from_se3(demo.fixtures[fx.name])})


def scene_frame(spec: CellSpec, name: str, demo: Demonstration) -> SE3:
    """World pose of a named target as it was during the demonstration (recorded object and fixture poses)."""
    if name in demo.objects:
        return demo.objects[name]
    for fx in spec.fixtures:
        moved = _as_recorded(fx, demo)
        if fx.name == name:
            return moved.pose.se3()
        if name in (slots := moved.slot_poses()):
            return slots[name]
    for f in spec.frames:
        if f.name == name:
            parent = SE3() if f.parent == "world" else scene_frame(spec, f.parent, demo)
            return parent * f.pose.se3()
    raise DemoError(f"target '{name}' is not an object, fixture, tray slot or frame of cell '{spec.name}'")
