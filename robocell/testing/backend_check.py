"""The Arm and Gripper conformance checks, callable: :func:`check_backend` (public in ``robocell.testing``).

In the spirit of Gymnasium's ``check_env``: the author of a backend or a server driver
runs the same checks robocell's own contract suite runs on the simulator and on the
remote backend, and gets one :class:`~robocell.errors.ContractViolation` per broken
promise, naming the method, what it promised and what it did::

    from robocell.core.cell import Cell
    from robocell.testing import check_backend

    check_backend(lambda: Cell.load("my_cell.yaml", "mybackend://arm"))

The checks move the arm (up to 1.2 rad on its first joint, 5-10 cm at the TCP around
its home pose), open and close the gripper on nothing, and send targets that must be
refused. Run them on a cell with free space around the arm's home pose.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from spatialmath import SE3

from robocell.core.arm import Arm, ArmState, Gripper, GripperHandle, Mode, MotionHandle, MotionResult
from robocell.errors import ConfigError, ContractViolation, MotionCancelled, SafetyViolation, UnreachableError
from robocell.motion.trajectory import timed_trajectory

if TYPE_CHECKING:
    from robocell.core.backends import Backend
    from robocell.core.cell import Cell

__all__ = ["CHECKS", "check_backend"]

SETTLE_TIMEOUT = 5.0  # s of wall time for an arm to come to rest (a loaded host stalls a remote arm's server)
POLL_TIMEOUT = 30.0  # s of wall time a MotionHandle may report "not done" before the check gives up
# A joint move that exercises every joint, inside any arm's limits around its home pose (rad).
JOINT_OFFSETS = np.array([0.3, 0.1, -0.2, 0.15, 0.2, -0.1, 0.3])


@dataclass
class _Subject:
    """What the checks use: one arm, its gripper, the backend's clock and the arm's home."""

    arm: Arm
    gripper: Gripper
    wait: Callable[[float], None]
    home: np.ndarray


def _expect(ok: bool, method: str, expected: str, actual: str | Callable[[], str]) -> None:
    if not ok:
        raise ContractViolation(method, expected, actual() if callable(actual) else actual)


def _must_raise(method: str, errors: tuple[type[BaseException], ...], call: Callable[[], object],
                match: str | None = None) -> BaseException:
    """Call ``call``; it must raise one of ``errors`` (with ``match`` in its message)."""
    names = " or ".join(e.__name__ for e in errors)
    promise = f"to raise {names}" + (f" mentioning {match!r}" if match else "")
    try:
        call()
    except errors as exc:
        if match is not None and not re.search(match, str(exc)):
            raise ContractViolation(method, promise, f"{type(exc).__name__}: {exc}") from exc
        return exc
    except Exception as exc:
        raise ContractViolation(method, promise, f"{type(exc).__name__}: {exc}") from exc
    raise ContractViolation(method, promise, "it returned normally")


def _poll(handle: MotionHandle | GripperHandle, method: str, each: Callable[[], None] = lambda: None) -> None:
    """Call ``each`` until the handle is done (a broken ``done()`` fails after POLL_TIMEOUT s, not never)."""
    t_end = time.monotonic() + POLL_TIMEOUT
    while not handle.done():
        each()
        _expect(time.monotonic() < t_end, f"{method}(wait=False).done()",
                f"True within {POLL_TIMEOUT:.0f} s", "still False")


def _at_rest(s: _Subject, off: Callable[[np.ndarray], np.ndarray], tol: float, still: float,
             where: str) -> ArmState:
    """Poll until ``max(off(q)) < tol`` rad and every joint is slower than ``still`` rad/s."""
    t_end = time.monotonic() + SETTLE_TIMEOUT
    st = s.arm.state()
    while not (float(np.max(off(st.q))) < tol and float(np.max(np.abs(st.qd))) < still):
        _expect(time.monotonic() < t_end, "Arm.state()", f"the arm at rest {where} within {SETTLE_TIMEOUT} s",
                f"{off(st.q)} rad off, moving at {np.max(np.abs(st.qd)):.3f} rad/s")
        s.wait(0.01)
        st = s.arm.state()
    return st


def _to_start(s: _Subject) -> None:
    """Bring a reused arm back to a fresh state through the contract itself: reset, home, gripper open."""
    st = s.arm.state()
    if st.mode is not Mode.IDLE:
        s.arm.reset()
    resting = float(np.max(np.abs(st.q - s.home))) < 2e-4 and float(np.max(np.abs(st.qd))) < 0.005
    if st.mode is not Mode.IDLE or not resting:
        s.arm.move_joints(s.home)
    s.gripper.open()
    # a motion counts as finished within its tolerance (10 mrad) or after a settle timeout; the
    # "nothing moved" checks need the arm at rest on home first
    _at_rest(s, lambda q: np.abs(q - s.home), 2e-4, 0.005, "at home")


# ---- the checks ------------------------------------------------------------------------------
def check_state(s: _Subject) -> None:
    arm = s.arm
    st = arm.state()
    _expect(isinstance(st, ArmState), "Arm.state()", "an ArmState", type(st).__name__)
    n = len(arm.joint_names)
    _expect(st.q.shape == (n,) and bool(np.all(np.isfinite(st.q))), "Arm.state().q",
            f"{n} finite joint positions", repr(st.q))
    _expect(st.mode is Mode.IDLE and st.faults == (), "Arm.state()", "mode IDLE and no faults on a fresh arm",
            f"mode {st.mode}, faults {st.faults}")
    _expect(bool(np.allclose(st.q, s.home, atol=0.01)), "Arm.state().q", f"the home pose {s.home}", repr(st.q))
    fk = arm.tcp_pose(st.q)
    _expect(float(np.linalg.norm(fk.t - st.tcp.t)) < 1e-3, "Arm.state().tcp",
            "the TCP pose the arm's kinematics give for q (within 1 mm)",
            lambda: f"{np.linalg.norm(fk.t - st.tcp.t) * 1000:.1f} mm away from it")


def check_move_joints_blocking(s: _Subject) -> None:
    arm = s.arm
    q = s.home + np.resize(JOINT_OFFSETS, len(s.home))
    t0 = arm.state().timestamp
    result = arm.move_joints(q)
    _expect(isinstance(result, MotionResult) and result.completed, "Arm.move_joints()",
            "a completed MotionResult", repr(result))
    _expect(result.joint_error <= arm.tolerance.joint, "Arm.move_joints()",
            f"joint_error <= {arm.tolerance.joint} rad", f"{result.joint_error:.4f} rad")
    q_end = arm.state().q
    _expect(bool(np.allclose(q_end, q, atol=arm.tolerance.joint)), "Arm.state().q after move_joints",
            f"the target {q}", repr(q_end))
    _expect(arm.state().timestamp > t0, "Arm.state().timestamp", "to advance during a motion",
            f"{arm.state().timestamp} (was {t0})")
    _expect(result.duration > 0.2, "Arm.move_joints()", "a time-parametrised motion (duration > 0.2 s)",
            f"duration {result.duration:.3f} s")


def check_speed_limit(s: _Subject) -> None:
    arm = s.arm
    q = s.home.copy()
    q[0] += 1.0
    handle = arm.move_joints(q, wait=False)
    _expect(isinstance(handle, MotionHandle), "Arm.move_joints(wait=False)", "a MotionHandle",
            type(handle).__name__)
    peak = [0.0]

    def sample() -> None:
        peak[0] = max(peak[0], float(np.max(np.abs(arm.state().qd))))

    _poll(handle, "Arm.move_joints", sample)
    limit = float(arm.safety.max_speed[0])
    _expect(peak[0] <= limit * 1.1, "Arm.state().qd during move_joints",
            f"joint speeds within the envelope ({limit:.2f} rad/s + 10 %)", f"a peak of {peak[0]:.2f} rad/s")
    _expect(handle.wait().completed, "MotionHandle.wait()", "a completed result", "completed=False")


def check_move_pose(s: _Subject) -> None:
    arm = s.arm
    start = arm.state().tcp
    goal = SE3.Trans(0.05, 0.10, -0.10) * start
    arm.move_pose(goal)
    err = float(np.linalg.norm(arm.state().tcp.t - goal.t))
    _expect(err < arm.tolerance.position, "Arm.move_pose()", "the TCP on the goal",
            f"{err * 1000:.1f} mm away")
    handle = arm.move_pose(start, linear=True, wait=False)
    a, b = goal.t, start.t
    u = (b - a) / np.linalg.norm(b - a)
    worst = [0.0]

    def sample() -> None:
        p = arm.state().tcp.t
        worst[0] = max(worst[0], float(np.linalg.norm((p - a) - np.dot(p - a, u) * u)))

    _poll(handle, "Arm.move_pose", sample)
    arm.check_result(handle.wait())
    _expect(worst[0] < 0.005, "Arm.move_pose(linear=True)", "the TCP within 5 mm of the straight line",
            f"{worst[0] * 1000:.1f} mm off it")
    err = float(np.linalg.norm(arm.state().tcp.t - start.t))
    _expect(err < arm.tolerance.position, "Arm.move_pose(linear=True)", "the TCP on the goal",
            f"{err * 1000:.1f} mm away")


def check_follow(s: _Subject) -> None:
    arm = s.arm
    q0 = arm.state().q
    t = np.linspace(0.0, 2.0, 41)
    q = q0[None, :] + 0.2 * np.sin(np.pi * t / 2.0)[:, None] * np.ones(len(q0))[None, :]
    result = arm.follow(timed_trajectory(t, q))
    _expect(result.completed, "Arm.follow()", "a completed MotionResult", repr(result))
    q_end = arm.state().q
    _expect(bool(np.allclose(q_end, q[-1], atol=arm.tolerance.joint)), "Arm.state().q after follow",
            f"the trajectory's last point {q[-1]}", repr(q_end))


def check_cancel(s: _Subject) -> None:
    arm = s.arm
    q = s.home.copy()
    q[0] += 1.2
    handle = arm.move_joints(q, wait=False)
    for _ in range(60):
        handle.done()
    handle.cancel()
    result = handle.wait()
    _expect(not result.completed, "MotionHandle.cancel()", "a result with completed=False", repr(result))
    s.wait(1.0)
    st = arm.state()
    speed = float(np.max(np.abs(st.qd)))
    _expect(speed < 0.01, "MotionHandle.cancel()", "the arm at rest 1 s later", f"moving at {speed:.3f} rad/s")
    _expect(st.mode is Mode.STOPPED, "Arm.state().mode after cancel", "STOPPED (latched)", str(st.mode))
    _must_raise("Arm.move_joints() while stopped", (SafetyViolation,), lambda: arm.move_joints(s.home), "reset")
    arm.reset()
    _expect(arm.state().mode is Mode.IDLE, "Arm.reset()", "mode IDLE", str(arm.state().mode))
    arm.move_joints(s.home)


def check_cancelled_blocking_raises(s: _Subject) -> None:
    arm = s.arm
    handle = arm.move_joints(s.home + 0.3, wait=False)
    handle.done()
    arm.stop()
    _must_raise("Arm.check_result() after stop()", (MotionCancelled,), lambda: arm.check_result(handle.wait()))


def check_servo(s: _Subject) -> None:
    arm = s.arm
    q = arm.state().q.copy()
    for _ in range(100):
        q[0] += 0.002  # 0.48 rad/s at 240 Hz, inside the envelope
        arm.servo(q)
        s.wait(1 / 240)
    # Judge where the arm comes to rest, not where it is after a fixed delay: a remote arm
    # cannot stop on the last setpoint (it passes it by its braking distance and comes back,
    # ~0.2 s), and a loaded host slows its server's control loop down further still.
    st = _at_rest(s, lambda m: np.abs(m[:1] - q[:1]), 0.01, 0.02, "on the servo target")
    _expect(abs(st.q[0] - q[0]) < 0.01, "Arm.servo()", f"joint 0 at {q[0]:.3f} rad", f"{st.q[0]:.3f} rad")
    jump = q.copy()
    jump[0] += 0.5
    _must_raise("Arm.servo() with a 0.5 rad step", (SafetyViolation,), lambda: arm.servo(jump), arm.joint_names[0])


def _bad_target(kind: str) -> Callable[[_Subject], None]:
    def check(s: _Subject) -> None:
        arm = s.arm
        before = arm.state().q
        q = s.home.copy()
        if kind == "limit":
            q[3] = arm.safety.upper[3] + 0.2
        elif kind == "nan":
            q[1] = np.nan
        elif kind == "inf":
            q[2] = np.inf
        else:
            q = q[:-2]
        method = f"Arm.move_joints() with a target {'of the wrong shape' if kind == 'shape' else kind}"
        exc = _must_raise(method, (SafetyViolation, ConfigError), lambda: arm.move_joints(q))
        if kind == "limit":
            _expect(arm.joint_names[3] in str(exc), method, f"a message naming joint {arm.joint_names[3]}",
                    str(exc))
        s.wait(0.2)
        q_end = arm.state().q
        _expect(bool(np.allclose(q_end, before, atol=1e-3)), method, "no motion", f"the arm moved to {q_end}")

    check.__doc__ = f"A {kind} joint target is refused before anything moves."
    return check


def check_unreachable(s: _Subject) -> None:
    arm = s.arm
    before = arm.state().q
    far = SE3.Trans(2.5, 0.0, 0.0) * SE3.Trans(0.5, 0.0, 0.3) * SE3.Rx(np.pi)  # outside the workspace box
    _must_raise("Arm.move_pose() outside the workspace", (SafetyViolation, UnreachableError),
                lambda: arm.move_pose(far))
    ws = arm.safety
    corner = SE3.Trans(*(float(v) - 0.01 for v in ws.workspace_max)) * SE3.Rx(np.pi)
    _must_raise("Arm.move_pose() to an unreachable pose", (UnreachableError,), lambda: arm.move_pose(corner), "mm")
    q_end = arm.state().q
    _expect(bool(np.allclose(q_end, before, atol=1e-3)), "Arm.move_pose() refused", "no motion",
            f"the arm moved to {q_end}")


def check_gripper(s: _Subject) -> None:
    g = s.gripper
    _expect(isinstance(g, Gripper), "Cell.gripper()", "a robocell.core.arm.Gripper", type(g).__name__)
    g.open()
    _expect(abs(g.width() - g.max_width) < 0.003, "Gripper.open()", f"width {g.max_width * 1000:.0f} mm",
            f"{g.width() * 1000:.1f} mm")
    g.close()
    _expect(g.width() < 0.005 and not g.grasped(), "Gripper.close() on nothing",
            "width < 5 mm and grasped() False", f"{g.width() * 1000:.1f} mm, grasped() {g.grasped()}")
    g.open(0.04)
    _expect(abs(g.width() - 0.04) < 0.003, "Gripper.open(0.04)", "width 40 mm", f"{g.width() * 1000:.1f} mm")
    h = g.close(wait=False)
    _expect(isinstance(h, GripperHandle), "Gripper.close(wait=False)", "a GripperHandle", type(h).__name__)
    h.wait()
    _expect(not g.grasped(), "Gripper.grasped() closed on nothing", "False", "True")


def check_arm_type(s: _Subject) -> None:
    _expect(isinstance(s.arm, Arm), "Cell.arm()", "a robocell.core.arm.Arm", type(s.arm).__name__)


# name -> check; each starts from a fresh arm at home with the gripper open
CHECKS: dict[str, Callable[[_Subject], None]] = {
    "state": check_state,
    "move_joints_blocking": check_move_joints_blocking,
    "speed_limit": check_speed_limit,
    "move_pose": check_move_pose,
    "follow": check_follow,
    "cancel": check_cancel,
    "cancelled_blocking_raises": check_cancelled_blocking_raises,
    "servo": check_servo,
    **{f"bad_target_{kind}": _bad_target(kind) for kind in ("limit", "nan", "inf", "shape")},
    "unreachable": check_unreachable,
    "gripper": check_gripper,
    "arm_type": check_arm_type,
}


def _subject_of_cell(cell: Cell, arm: str | None) -> _Subject:
    a = cell.arm(arm)
    home = np.asarray(cell.spec.arm(a.name).arm_model().home, dtype=float)
    return _Subject(a, cell.gripper(a.name), cell.wait, home)


def _subject_of_backend(backend: Backend, arm: str | None) -> _Subject:
    names = list(backend.arms)
    name = arm if arm is not None else (names[0] if len(names) == 1 else None)
    if name is None or name not in backend.arms or name not in backend.grippers:
        raise ConfigError(f"check_backend: arm={arm!r} names no arm with a gripper of this backend; its arms are: "
                          f"{', '.join(names)} (pass arm=NAME)")
    a = backend.arms[name]
    # a bare backend has no cell file to read the home pose from: the arm's pose now is home
    return _Subject(a, backend.grippers[name], backend.wait, a.state().q.copy())


def check_backend(target: Cell | Backend | Callable[[], Cell], *, arm: str | None = None,
                  checks: Iterable[str] | None = None) -> None:
    """Run the Arm and Gripper conformance checks; raise ContractViolation for the first broken promise.

    ``target`` is a factory that returns a fresh :class:`~robocell.core.cell.Cell` (best: every
    check starts on a new cell, which is closed after it), or a running ``Cell`` or
    ``Backend`` (the arm is brought back to its home pose between checks through the
    contract itself; for a bare backend, home is where the arm is when the call starts).
    ``arm`` picks the arm of a cell with several; ``checks`` runs only the named ones
    (names in :data:`CHECKS`). An unexpected exception inside a check is reported as
    that check's violation, with the exception chained.
    """
    from robocell.core.backends import Backend
    from robocell.core.cell import Cell

    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ConfigError(f"check_backend: unknown check(s) {', '.join(unknown)}; the checks are: {', '.join(CHECKS)}")
    fixed: _Subject | None = None
    factory: Callable[[], Cell] | None = None
    if isinstance(target, Cell):
        fixed = _subject_of_cell(target, arm)
    elif isinstance(target, Backend):
        fixed = _subject_of_backend(target, arm)
    elif callable(target):
        factory = target
    else:
        raise ConfigError(f"check_backend: expected a Cell, a Backend or a function returning a Cell, "
                          f"got {type(target).__name__}")
    for name in names:
        if factory is not None:
            cell = factory()
            try:
                _run(name, _subject_of_cell(cell, arm))
            finally:
                cell.close()
        elif fixed is not None:
            _to_start(fixed)
            _run(name, fixed)


def _run(name: str, subject: _Subject) -> None:
    try:
        CHECKS[name](subject)
    except ContractViolation as exc:
        raise ContractViolation(f"[{name}] {exc.method}", exc.expected, exc.actual) from exc
    except Exception as exc:
        raise ContractViolation(f"[{name}] check", "to complete without an error",
                                f"{type(exc).__name__}: {exc}") from exc
