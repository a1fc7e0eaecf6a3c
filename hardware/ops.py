"""The server's operation handlers (one method per protocol operation).

Handlers run on the command thread and must be quick; motions are planned on
the planner thread (:class:`Deferred`).  A handler either returns the
``result`` map of an OK reply or raises :class:`WireError` /
:class:`RobocellError`; in both cases nothing has been changed before the
checks passed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
from spatialmath import SE3

from robocell.errors import ConfigError, KinematicsError, RobocellError, SafetyViolation, UnreachableError
from robocell.hardware import linkops
from robocell.hardware.control import ControlLoop
from robocell.hardware.executor import Motion
from robocell.hardware.bounds import (
    MAX_MOTION_DURATION, MAX_STOP_REASON, MAX_TRAJECTORY_SAMPLES, MIN_SAMPLE_INTERVAL, MIN_SPEED, SERVO_DT,
)
from robocell.hardware.bounds import MAX_GRIPPER_FORCE as MAX_GRIPPER_FORCE
from robocell.hardware.servojudge import SERVO_FRESH as SERVO_FRESH  # re-exported (benchmarks read it)
from robocell.hardware.protocol import (
    MAX_ARRAY, VERSION, Code, Request, WireError, check_args, get_bool, get_float, get_matrix, get_pose,
    describe, get_str, get_vector, reply,
)
from robocell.motion.planning import check_follow_start, check_motion, plan_joints, plan_pose
from robocell.motion.trajectory import JointTrajectory, timed_trajectory

if TYPE_CHECKING:
    from robocell.hardware.driver import DriverState
    from robocell.hardware.server import ArmServer

CALL_TIMEOUT = 1.0  # s to wait for the control thread to take a call (it ticks every 1-2 ms)


def code_for(exc: RobocellError) -> Code:
    """The reply code of a robocell error raised while handling a request."""
    if isinstance(exc, UnreachableError):
        return Code.UNREACHABLE
    if isinstance(exc, SafetyViolation):
        return Code.SAFETY
    if isinstance(exc, KinematicsError):
        return Code.UNREACHABLE
    if isinstance(exc, ConfigError):
        return Code.BAD_FIELD
    return Code.INTERNAL


class Deferred:
    """A reply that the planner thread will produce (a full reply map)."""

    def __init__(self, fut: Future[dict[str, Any]]) -> None:
        self.fut = fut

    def on_done(self, cb: Callable[[dict[str, Any]], None]) -> None:
        self.fut.add_done_callback(lambda f: cb(f.result()))


class Ops:
    def __init__(self, server: ArmServer) -> None:
        self.s = server
        self.control: ControlLoop = server.control
        self.proxy = server.control_proxy  # --control process: the control process's end of the link, else None
        self.n = len(server.kin.joint_names)
        self.names = server.kin.joint_names

    def dispatch(self, req: Request, key: str, t_recv: float) -> dict[str, Any] | Deferred:
        handler: Callable[[Request, str, float], dict[str, Any] | Deferred] = getattr(self, "op_" + req.op)
        return handler(req, key, t_recv)

    # ---------------------------------------------------------------- helpers
    def _call(self, fn: Callable[[float, DriverState], Any]) -> Any:
        return self.control.run(fn, CALL_TIMEOUT)

    def _invoke(self, name: str, **args: Any) -> Any:
        """Run ``linkops.CALLS[name]`` on the control loop: this process's thread, or the control process."""
        if self.proxy is not None:
            return self.proxy.invoke(name, args, CALL_TIMEOUT)
        c, judge = self.control, self.s.servo_judge
        return self._call(lambda now, st: linkops.CALLS[name](c, judge, now, st, args))

    def _ready_to_move(self, op: str) -> None:
        if self.proxy is not None:
            # asked, not read from the state copy: a client that saw its motion end in the state
            # stream may be a state ahead of this process's copy (and the loop checks again at start)
            self._invoke("ready", op=op)
            return
        linkops.ready_to_move(self.control, op)

    def _plan(self, req: Request, t_recv: float, plan: Callable[[], tuple[JointTrajectory, np.ndarray]]) -> Deferred:
        self._ready_to_move(req.op)
        return Deferred(self.s.planner.submit(self._plan_and_start, req, t_recv, plan))

    def _plan_and_start(self, req: Request, t_recv: float,
                        plan: Callable[[], tuple[JointTrajectory, np.ndarray]]) -> dict[str, Any]:
        try:
            traj, q_goal = plan()
            check_motion(self.s.plan_kin, self.s.safety, self.s.base, traj)
            waited = time.monotonic() - t_recv
            if waited > req.deadline:
                raise WireError(Code.DEADLINE_EXCEEDED, f"{req.op}: planning finished {waited * 1000:.0f} ms after "
                                f"receipt, past the deadline of {req.deadline * 1000:.0f} ms; nothing moved")
            if self.proxy is not None:
                self.proxy.begin(req.id, traj, q_goal, req.op, CALL_TIMEOUT)
            else:
                motion = Motion(req.id, traj, q_goal, 0.0)
                c, judge = self.control, self.s.servo_judge
                self._call(lambda now, st: linkops.start(c, judge, now, motion, req.op))
            return reply(req.id, Code.OK, "", {"motion": req.id, "duration": traj.duration,
                                               "q_goal": q_goal.tolist()})
        except WireError as exc:
            return reply(req.id, exc.code, exc.message)
        except RobocellError as exc:
            return reply(req.id, code_for(exc), str(exc))
        except Exception as exc:  # noqa: BLE001 - a planner bug must become an error reply, not a hang
            print(f"robocell serve: planner error: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
            self.control.request_stop(f"internal server error planning '{req.op}' ({type(exc).__name__})")
            return reply(req.id, Code.INTERNAL, f"{req.op}: internal server error ({type(exc).__name__}); "
                                                "the arm was stopped. Please report it")

    def _q_plan_start(self) -> np.ndarray:
        if self.proxy is not None:
            return np.asarray(self._invoke("q_cmd"), dtype=float)
        return self.control.executor.q_cmd.copy()

    # ---------------------------------------------------------------- read-only
    def op_hello(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset({"client"}), req.op)
        s, sf = self.s, self.s.safety
        info = s.driver.info
        return {
            "server": "robocell", "version": VERSION, "key": key,
            "arm": {
                "name": s.arm, "joint_names": list(self.names), "lower": sf.lower.tolist(), "upper": sf.upper.tolist(),
                "max_speed": sf.max_speed.tolist(), "max_accel": sf.max_accel.tolist(),
                "max_tcp_speed": sf.max_tcp_speed,
                "workspace": {"min": sf.workspace_min.tolist(), "max": sf.workspace_max.tolist()},
                "base": s.base.reshape(-1).tolist(), "tcp_link": s.kin.tcp_link,
                "home": list(map(float, s.model.home)), "vendor": info.vendor,
            },
            "gripper": {"max_width": info.gripper_max_width} if info.gripper_max_width > 0 else None,
            "state_endpoint": s.state_endpoint, "state_rate": s.state_rate,
            "control_rate": info.control_rate, "watchdog": s.watchdog, "lease_timeout": s.lease_timeout,
            "servo_period": s.servo_period, "liveness": s.liveness, "servo_timeout": s.servo_timeout,
            "control": s.control_mode, "rt_endpoint": self.proxy.rt_endpoint if self.proxy is not None else None,
            "scheduling": s.scheduling_text(),
        }

    def op_state(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset(), req.op)
        return (self.proxy if self.proxy is not None else self.control).latest

    def op_motion(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset({"motion"}), req.op)
        mid = req.args.get("motion")
        if isinstance(mid, bool) or not isinstance(mid, int) or not 0 <= mid < 2**64:
            raise WireError(Code.BAD_FIELD, "motion: field 'motion' must be the integer id of a move")
        if self.proxy is not None:
            result: dict[str, Any] = self.proxy.invoke("motion", {"mid": mid}, CALL_TIMEOUT)
            return result
        return linkops.motion(self.control, mid)

    def op_stats(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset(), req.op)
        out: dict[str, Any] = (self.proxy.invoke("stats", {}, CALL_TIMEOUT) if self.proxy is not None
                               else linkops.control_stats(self.control))
        out.update({
            "messages": dict(self.s.counters),
            "reply_cache": {"replies": len(self.s.cache), "clients": self.s.cache.client_count()},
            "audit": {"written": self.s.audit.written, "suppressed": self.s.audit.suppressed,
                      "rotations": self.s.audit.rotations},
            "control": self.s.control_mode, "scheduling": self.s.scheduling_text(),
            "rt_endpoint": self.proxy.rt_endpoint if self.proxy is not None else None,
        })
        return out

    def op_world(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset(), req.op)
        result: dict[str, Any] = self._invoke("world")
        return result

    # ---------------------------------------------------------------- lease, stop, reset
    def op_lease_acquire(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset({"liveness"}), req.op)
        liveness = get_bool(req.args, "liveness", req.op, False)
        token, channel = self.s.acquire_lease(key, t_recv, req.lease, liveness)
        return {"token": token, "watchdog": self.s.watchdog, "lease_timeout": self.s.lease_timeout,
                "liveness": channel.describe() if channel is not None else None}

    def op_lease_release(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset(), req.op)
        ended = bool(self._invoke("release"))
        if self.proxy is not None:
            self.s.leases.release()  # the authority's copy (the control process released its own)
        self.s.servo_judge.forget()
        return {"servo_ended": ended}

    def op_stop(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset({"reason"}), req.op)
        # cut, never refused: a stop must not fail for its reason (and the fault list stays small)
        reason = get_str(req.args, "reason", "stop", default="requested")[:MAX_STOP_REASON]
        self.control.request_stop(f"stop requested by {key} ({reason})" if reason != "requested" else "stop requested")
        return {}

    def op_reset(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset(), req.op)
        self._invoke("reset")
        self.s.servo_judge.forget()
        return {}

    # ---------------------------------------------------------------- motions
    def op_move_joints(self, req: Request, key: str, t_recv: float) -> Deferred:
        check_args(req.args, frozenset({"q", "speed"}), req.op)
        q_goal = get_vector(req.args, "q", req.op, self.n, self.names)
        speed = get_float(req.args, "speed", req.op, lo=MIN_SPEED, hi=1.0, default=1.0)
        q0 = self._q_plan_start()
        s = self.s
        return self._plan(req, t_recv, lambda: (plan_joints(s.plan_kin, s.safety, s.base, q0, q_goal, speed), q_goal))

    def op_move_pose(self, req: Request, key: str, t_recv: float) -> Deferred:
        check_args(req.args, frozenset({"pose", "linear", "speed"}), req.op)
        pose = SE3(get_pose(req.args, "pose", req.op), check=False)
        linear = get_bool(req.args, "linear", req.op, False)
        speed = get_float(req.args, "speed", req.op, lo=MIN_SPEED, hi=1.0, default=1.0)
        q0 = self._q_plan_start()
        s = self.s
        return self._plan(req, t_recv, lambda: plan_pose(s.plan_kin, s.safety, s.base, q0, pose,
                                                         linear=linear, speed=speed))

    def op_follow(self, req: Request, key: str, t_recv: float) -> Deferred:
        check_args(req.args, frozenset({"t", "q", "qd"}), req.op)
        rows = min(MAX_ARRAY // max(self.n, 1), MAX_TRAJECTORY_SAMPLES)
        t_raw = req.args.get("t")
        if not isinstance(t_raw, list) or not 1 <= len(t_raw) <= rows:
            got = f"{len(t_raw)} values" if isinstance(t_raw, list) else type(t_raw).__name__
            raise WireError(Code.BAD_FIELD, f"follow: field 't' must be a list of 1..{rows} sample times (s), "
                                            f"got {got}")
        t = get_vector(req.args, "t", req.op, len(t_raw))
        if t[-1] - t[0] > MAX_MOTION_DURATION:
            raise WireError(Code.BAD_FIELD, f"follow: field 't' spans {t[-1] - t[0]:.6g} s, above the limit of "
                                            f"{MAX_MOTION_DURATION:g} s; split the trajectory into shorter ones")
        if t.size > 1:
            gaps = np.diff(t)
            i = int(np.argmin(gaps))
            if gaps[i] < MIN_SAMPLE_INTERVAL:
                raise WireError(Code.BAD_FIELD, f"follow: t[{i + 1}] - t[{i}] = {gaps[i]:.3g} s; sample times must "
                                                f"increase by at least {MIN_SAMPLE_INTERVAL:g} s")
        q = get_matrix(req.args, "q", req.op, self.n, rows)
        traj = (JointTrajectory(t, q, get_matrix(req.args, "qd", req.op, self.n, rows)) if "qd" in req.args
                else timed_trajectory(t, q))
        check_follow_start(traj, self.proxy.q_meas if self.proxy is not None else self.control.q_meas)
        return self._plan(req, t_recv, lambda: (traj, traj.q[-1].copy()))

    def op_servo(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset({"q", "dt", "seq"}), req.op)
        c, s = self.control, self.s
        q = get_vector(req.args, "q", req.op, self.n, self.names)
        dt = get_float(req.args, "dt", req.op, lo=SERVO_DT[0], hi=SERVO_DT[1], default=s.servo_period)
        seq = req.args.get("seq", req.id)
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**64:
            raise WireError(Code.BAD_FIELD, "servo: field 'seq' must be an integer in [0, 2^64-1]")
        if self.proxy is not None:
            # judged and applied by the control process, which answers within a tick (the realtime
            # socket is the fast path: no reply, no command process on the way)
            self.proxy.invoke("servo", {"q": q.tolist(), "dt": dt, "seq": seq, "t_recv": t_recv}, CALL_TIMEOUT)
            return {"seq": seq}
        linkops.servo_ready(c)
        velocity = s.servo_judge.judge(q, dt, t_recv, c.executor.q_cmd.copy(), np.asarray(c.q_meas, dtype=float))

        def apply(now: float, st: DriverState) -> None:
            if not c.latched:
                c.executor.servo(seq, q, velocity, dt, t_recv)

        c.post(apply)
        return {"seq": seq}

    def op_servo_end(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset(), req.op)
        ended, seq = self._invoke("servo_end")
        self.s.servo_judge.forget()  # a new stream starts from where the arm is
        return {"ended": bool(ended), "seq": int(seq)}

    def op_gripper(self, req: Request, key: str, t_recv: float) -> dict[str, Any]:
        check_args(req.args, frozenset({"action", "width", "force"}), req.op)
        view, info = self.control if self.proxy is None else self.proxy, self.s.driver.info
        if info.gripper_max_width <= 0:
            raise WireError(Code.UNSUPPORTED, "gripper: this arm has no gripper")
        if self.proxy is None and (view.latched or view.hardware_faults):
            self._ready_to_move(req.op)  # (--control process: the control process checks it)
        action = get_str(req.args, "action", req.op)
        width: float | None = None
        force: float | None = None
        if action == "open":
            width = get_float(req.args, "width", req.op, lo=0.0, hi=info.gripper_max_width,
                              default=info.gripper_max_width)
        elif action == "close":
            force = get_float(req.args, "force", req.op, default=self.s.gripper_force)
            if not (0.0 < force <= MAX_GRIPPER_FORCE):
                raise WireError(Code.SAFETY, f"gripper: force = {force} N is outside (0, {MAX_GRIPPER_FORCE}] N")
        else:
            raise WireError(Code.BAD_FIELD, f"gripper: action must be 'open' or 'close', got {describe(action)}")

        return {"seq": self._invoke("gripper", width=width, force=force)}
