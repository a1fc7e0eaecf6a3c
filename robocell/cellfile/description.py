"""A plain-text summary of a validated cell file (``robocell cell check``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robocell.cellfile.spec import ArmSpec, CellSpec, FixtureSpec, ObjectSpec
    from robocell.cellfile.types import ColorSpec, PoseSpec


def _n(x: float) -> str:
    return f"{x:.4g}"


def _v(xs: Iterable[float]) -> str:
    return "[" + ", ".join(_n(x) for x in xs) + "]"


def _pose(p: PoseSpec) -> str:
    text = f"at {_v(p.xyz)} m"
    if any(p.rpy):
        text += f", rpy {_v(p.rpy)} rad"
    return text


def _color(c: ColorSpec) -> str:
    return c.name if c.named else f"{_v(c.rgba)} (~{c.name})"


def _arm(a: ArmSpec) -> list[str]:
    m = a.arm_model()
    kind = f"model {a.model}" if a.model else f"custom URDF {a.urdf}"
    s = a.safety
    ws = s.workspace
    lines = [
        f"  {a.name}: {kind}, {m.dof} dof, base {_pose(a.base)}",
        f"    home {_v(m.home)} rad",
        (f"    gripper: {len(m.finger_joints)} fingers, opens to {_n(m.max_width)} m, "
         f"closes with {_n(a.gripper.force)} N per finger"),
        (f"    safety: joint speed <= {_speed(s.max_joint_speed)} rad/s, accel <= {_speed(s.max_joint_accel)} rad/s^2, "
        f"TCP speed <= {_n(s.max_tcp_speed)} m/s"),
        (f"    workspace (world, m): x {_n(ws.min[0])}..{_n(ws.max[0])}, y {_n(ws.min[1])}..{_n(ws.max[1])}, "
        f"z {_n(ws.min[2])}..{_n(ws.max[2])}"),
    ]
    if s.joint_limits:
        tight = ", ".join(f"{j} {_v(v)}" for j, v in s.joint_limits.items())
        lines.append(f"    joint limits tightened (rad): {tight}")
    return lines


def _speed(v: float | tuple[float, ...]) -> str:
    return _v(v) if isinstance(v, tuple) else _n(v)


def _object(o: ObjectSpec) -> str:
    if o.shape == "box":
        size = " x ".join(_n(s) for s in o.size) + " m box"
    elif o.shape == "cylinder":
        size = f"cylinder r {_n(o.size[0])} m, h {_n(o.size[1])} m"
    else:
        size = f"mesh {o.mesh} scaled {_v(o.size)}"
    text = f"  {o.name}: {size}, {_color(o.color)}, {_n(o.mass)} kg, friction {_n(o.friction)}, {_pose(o.pose)}"
    r = o.randomize
    if r is not None:
        text += f"; randomised by x {_v(r.x)} m, y {_v(r.y)} m, yaw {_v(r.yaw)} rad"
    return text


def _fixture(f: FixtureSpec) -> str:
    ix, iy, h = f.size
    if f.is_obstacle:
        text = f"  {f.name}: obstacle, solid {_n(ix)} x {_n(iy)} x {_n(h)} m box, {_color(f.color)}, {_pose(f.pose)}"
    else:
        text = (f"  {f.name}: {f.type}, inside {_n(ix)} x {_n(iy)} m, walls {_n(h)} m high and {_n(f.wall)} m thick, "
                f"{_color(f.color)}, {_pose(f.pose)}")
    if f.keep_out:
        text += "; keep-out (nothing may touch it)"
    r = f.randomize
    if r is not None:
        text += f"; moved per seed by x {_v(r.x)} m, y {_v(r.y)} m, yaw {_v(r.yaw)} rad"
    if f.slots is not None:
        names = list(f.slot_poses())
        text += f"; slots {f.slots.rows} x {f.slots.cols} (rows x cols): {', '.join(names)}"
    return text


def describe(spec: CellSpec) -> str:
    """Arms (model, dof, home), objects (shape, size, colour, mass), fixtures with slots, frames,
    safety numbers and cameras, one item per line."""
    out = [f"cell '{spec.name}' (cell-file version {spec.version})"]
    t = spec.table
    if t is None:
        out.append("table: none")
    else:
        out.append(f"table: {' x '.join(_n(s) for s in t.size)} m, centre {_v(t.center)} m, top at world z = 0, "
                   f"{_color(t.color)}")
    out.append(f"arms ({len(spec.arms)}):")
    for a in spec.arms:
        out += _arm(a)
    out.append(f"objects ({len(spec.objects)}):")
    out += [_object(o) for o in spec.objects] or ["  (none)"]
    out.append(f"fixtures ({len(spec.fixtures)}):")
    out += [_fixture(f) for f in spec.fixtures] or ["  (none)"]
    out.append(f"frames ({len(spec.frames)}):")
    out += [f"  {f.name}: {_pose(f.pose)} relative to {f.parent}" for f in spec.frames] or ["  (none)"]
    out.append(f"cameras ({len(spec.cameras)}):")
    out += [f"  {c.name}: eye {_v(c.eye)} m -> target {_v(c.target)} m, up {_v(c.up)}, fov {_n(c.fov)} deg, "
            f"{c.width} x {c.height} px" for c in spec.cameras]
    return "\n".join(out)
