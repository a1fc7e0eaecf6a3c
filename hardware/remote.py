"""The ``tcp://`` backend: RemoteArm and RemoteGripper over a :class:`Connection`.

They implement the same core contracts as the simulator's arm, so skills,
programs and the contract test suite run unchanged against a server.  The
server plans and checks every motion (it is the authority); the client only
checks argument shapes and types so a mistake gets the same error class as
in simulation.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike
from spatialmath import SE3

from robocell.core.arm import Arm, ArmState, Gripper, Mode, MotionResult
from robocell.errors import BackendError, ConfigError, ConnectionLost, MotionError
from robocell.hardware.client import Connection
from robocell.hardware.connect import DEFAULT_CONNECT_TIMEOUT
from robocell.motion.kinematics_setup import arm_parts
from robocell.motion.planning import check_follow_start, speed_factor

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec
    from robocell.hardware.sampling import RemoteSampler
    from robocell.recording.recorder import SampleSink
    from robocell.motion.trajectory import JointTrajectory

SETTLE_MARGIN = 2.5  # s past a trajectory's duration before a wait gives up (server settles within 1 s)


def _arm_state(s: dict[str, Any]) -> ArmState:
    return ArmState(
        q=np.asarray(s["q"], dtype=float), qd=np.asarray(s["qd"], dtype=float),
        tcp=SE3(np.asarray(s["tcp"], dtype=float).reshape(4, 4), check=False),
        mode=Mode(s["mode"]), faults=tuple(s["faults"]), timestamp=float(s["t"]),
    )


class RemoteMotion:
    """A motion running on the server (a MotionHandle)."""

    def __init__(self, arm: RemoteArm, motion_id: int, duration: float, q_goal: np.ndarray) -> None:
        self.arm = arm
        self.id = motion_id
        self.duration = duration
        self.q_goal = q_goal
        self.result: MotionResult | None = None

    def _summary(self, state: dict[str, Any]) -> dict[str, Any] | None:
        m = state.get("motion")
        if m is not None and m.get("id") == self.id:
            return m
        return self.arm.conn.request("motion", {"motion": self.id})

    def _check(self, state: dict[str, Any]) -> bool:
        m = self._summary(state)
        if m is None or m["status"] == "running":
            return False
        self.result = MotionResult(
            joint_error=float(m["joint_error"]), position_error=float(m["position_error"]),
            rotation_error=float(m["rotation_error"]), duration=float(m["duration"]),
            completed=bool(m["completed"]), q_goal=self.q_goal,
        )
        return True

    def done(self) -> bool:
        # waits for the next state (one state period at most): polling loops run at the stream's pace
        return self.result is not None or self._check(self.arm.conn.next_state())

    def wait(self, timeout: float | None = None) -> MotionResult:
        limit = self.duration + SETTLE_MARGIN if timeout is None else timeout
        t_end = time.monotonic() + limit
        # _check sets self.result when it returns True, and the loop then ends on it
        while (result := self.result) is None:
            if not self._check(self.arm.conn.next_state()) and time.monotonic() > t_end:
                raise MotionError(f"arm '{self.arm.name}': motion {self.id} did not finish within {limit:.2f} s")
        return result

    def cancel(self) -> None:
        if self.result is None:
            self.arm.stop()


class RemoteArm(Arm):
    """An arm behind ``robocell serve``; same contract as the simulated arm."""

    def __init__(self, conn: Connection, name: str, spec: CellSpec) -> None:
        arm_spec = next(a for a in spec.arms if a.name == name)
        _, kin, safety = arm_parts(arm_spec)
        super().__init__(name, kin, safety, arm_spec.base.se3())
        self.conn = conn

    def state(self) -> ArmState:
        return _arm_state(self.conn.state())

    @overload
    def move_joints(self, q: ArrayLike, *, wait: Literal[True] = ..., speed: float = ...) -> MotionResult: ...
    @overload
    def move_joints(self, q: ArrayLike, *, wait: Literal[False], speed: float = ...) -> RemoteMotion: ...
    @overload
    def move_joints(self, q: ArrayLike, *, wait: bool, speed: float = ...) -> MotionResult | RemoteMotion: ...

    def move_joints(self, q: ArrayLike, *, wait: bool = True, speed: float = 1.0) -> MotionResult | RemoteMotion:
        q_goal = self._as_joints(q, "move_joints target")
        speed_factor(speed)
        r = self.conn.request("move_joints", {"q": q_goal.tolist(), "speed": float(speed)})
        return self._started(r, wait)

    @overload
    def move_pose(self, pose: SE3, *, linear: bool = ..., wait: Literal[True] = ...,
                  speed: float = ...) -> MotionResult: ...
    @overload
    def move_pose(self, pose: SE3, *, linear: bool = ..., wait: Literal[False], speed: float = ...) -> RemoteMotion: ...
    @overload
    def move_pose(self, pose: SE3, *, linear: bool = ..., wait: bool,
                  speed: float = ...) -> MotionResult | RemoteMotion: ...

    def move_pose(self, pose: SE3, *, linear: bool = False, wait: bool = True,
                  speed: float = 1.0) -> MotionResult | RemoteMotion:
        if not isinstance(pose, SE3):
            raise ConfigError(f"move_pose needs a spatialmath SE3 pose, got {type(pose).__name__}")
        speed_factor(speed)
        r = self.conn.request("move_pose", {"pose": np.asarray(pose.A).reshape(-1).tolist(),
                                            "linear": bool(linear), "speed": float(speed)})
        return self._started(r, wait)

    @overload
    def follow(self, traj: JointTrajectory, *, wait: Literal[True] = ...) -> MotionResult: ...
    @overload
    def follow(self, traj: JointTrajectory, *, wait: Literal[False]) -> RemoteMotion: ...
    @overload
    def follow(self, traj: JointTrajectory, *, wait: bool) -> MotionResult | RemoteMotion: ...

    def follow(self, traj: JointTrajectory, *, wait: bool = True) -> MotionResult | RemoteMotion:
        check_follow_start(traj, self.state().q)
        return self._started(self._send_trajectory(traj), wait)

    def _execute(self, traj: JointTrajectory, q_goal: np.ndarray) -> RemoteMotion:
        return self._started(self._send_trajectory(traj), wait=False)

    def _send_trajectory(self, traj: JointTrajectory) -> dict[str, Any]:
        return self.conn.request("follow", {"t": traj.t.tolist(), "q": traj.q.tolist(), "qd": traj.qd.tolist()})

    @overload
    def _started(self, r: dict[str, Any], wait: Literal[False]) -> RemoteMotion: ...
    @overload
    def _started(self, r: dict[str, Any], wait: bool) -> MotionResult | RemoteMotion: ...

    def _started(self, r: dict[str, Any], wait: bool) -> MotionResult | RemoteMotion:
        handle = RemoteMotion(self, int(r["motion"]), float(r["duration"]), np.asarray(r["q_goal"], dtype=float))
        if not wait:
            return handle  # the concrete handle, not the protocol _await returns
        return self._await(handle, True)

    def servo(self, q: ArrayLike, dt: float | None = None, *, wait: bool = True) -> None:
        """Stream one setpoint; ``dt`` is the stream's period (default: the server's servo period).

        ``wait=False`` pipelines the stream (for 1 kHz): the call returns once
        the setpoint is sent, and a rejection raises on a later ``servo`` call
        or on ``conn.flush()``; the server checks every setpoint either way.
        """
        arr = self._as_joints(q, "servo setpoint")
        args: dict[str, Any] = {"q": arr.tolist()}
        if dt is not None:
            args["dt"] = float(dt)
        if wait:
            self.conn.flush()
            self.conn.request("servo", args)
        else:
            self.conn.send_nowait("servo", args)

    def end_servo(self) -> None:
        """End the servo stream now: the arm settles on the last setpoint and the mode is idle again.

        A stream also ends by itself when no setpoint arrives for the server's servo timeout
        (docs/protocol.md §6); ending it explicitly is quicker and says so in the audit log.
        """
        self.conn.flush()
        self.conn.request("servo_end")

    def stop(self) -> None:
        self.conn.request("stop")

    def reset(self) -> None:
        # the server refuses (BUSY) while the stop's deceleration runs; that takes at most ~1 s
        t_end = time.monotonic() + self.conn.timeout + 2.0
        while True:
            try:
                self.conn.request("reset")
                return
            except MotionError:
                if time.monotonic() > t_end:
                    raise
                self.conn.next_state()


class GripperMotion:
    def __init__(self, gripper: RemoteGripper, seq: int) -> None:
        self.gripper = gripper
        self.seq = seq
        self.finished = False

    def _check(self, s: dict[str, Any]) -> bool:
        g = s["gripper"]
        self.finished = g["seq"] >= self.seq and not g["busy"]
        return self.finished

    def done(self) -> bool:
        return self.finished or self._check(self.gripper.conn.next_state())

    def wait(self, timeout: float | None = None) -> None:
        limit = 3.0 if timeout is None else timeout
        t_end = time.monotonic() + limit
        while not self._check(self.gripper.conn.next_state()):
            if time.monotonic() > t_end:
                raise MotionError(f"gripper did not settle within {limit:.2f} s")

    def cancel(self) -> None:
        if not self.finished:
            self.gripper.open(self.gripper.width(), wait=False)
            self.finished = True


class RemoteGripper(Gripper):
    def __init__(self, conn: Connection, arm_name: str, max_width: float) -> None:
        self.conn = conn
        self.arm_name = arm_name
        self.max_width = max_width

    @overload
    def open(self, width: float | None = ..., *, wait: Literal[True] = ...) -> None: ...
    @overload
    def open(self, width: float | None = ..., *, wait: Literal[False]) -> GripperMotion: ...
    @overload
    def open(self, width: float | None = ..., *, wait: bool) -> GripperMotion | None: ...

    def open(self, width: float | None = None, *, wait: bool = True) -> GripperMotion | None:
        w = self.max_width if width is None else float(width)
        if not (np.isfinite(w) and 0.0 <= w <= self.max_width + 1e-9):
            raise ConfigError(f"gripper of arm '{self.arm_name}': width = {width!r} m is outside "
                              f"[0, {self.max_width:.3f}] m")
        return self._start({"action": "open", "width": min(w, self.max_width)}, wait)

    @overload
    def close(self, force: float | None = ..., *, wait: Literal[True] = ...) -> None: ...
    @overload
    def close(self, force: float | None = ..., *, wait: Literal[False]) -> GripperMotion: ...
    @overload
    def close(self, force: float | None = ..., *, wait: bool) -> GripperMotion | None: ...

    def close(self, force: float | None = None, *, wait: bool = True) -> GripperMotion | None:
        args: dict[str, Any] = {"action": "close"}
        if force is not None:
            f = float(force)
            if not (np.isfinite(f) and 0.0 < f <= 200.0):
                raise ConfigError(f"gripper of arm '{self.arm_name}': force = {force!r} N is outside (0, 200] N")
            args["force"] = f
        return self._start(args, wait)

    def _start(self, args: dict[str, Any], wait: bool) -> GripperMotion | None:
        m = GripperMotion(self, int(self.conn.request("gripper", args)["seq"]))
        if wait:
            m.wait()
            return None
        return m

    def width(self) -> float:
        return float(self.conn.state()["gripper"]["width"])

    def grasped(self) -> bool:
        return bool(self.conn.state()["gripper"]["grasped"])


class RemoteBackend:
    """A cell whose arm is served by ``robocell serve`` (implements the core Backend protocol)."""

    def __init__(self, spec: CellSpec, address: str, *, keys: str | None = None, timeout: float = 2.0,
                 observe: bool = False, latency: float = 0.0, state_drop: float = 0.0,
                 seed: int | None = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 liveness: bool = True) -> None:
        from robocell.hardware.security import load_client_keys

        self.spec = spec
        self.conn = Connection(address, keys=load_client_keys(keys) if keys else None, timeout=timeout,
                               latency=latency, state_drop=state_drop, seed=seed, connect_timeout=connect_timeout,
                               liveness=liveness)
        try:
            remote_arm = self._check_arm(spec, self.conn)
            arm = remote_arm.name
            self.arms: dict[str, Arm] = {arm: remote_arm}
            g = self.conn.info.get("gripper")
            self.grippers: dict[str, Gripper] = (
                {arm: RemoteGripper(self.conn, arm, float(g["max_width"]))} if g else {})
            if not observe:
                self.conn.acquire()
        except BaseException:
            self.conn.close()
            raise

    @staticmethod
    def _check_arm(spec: CellSpec, conn: Connection) -> RemoteArm:
        """The RemoteArm for the server's arm, once its description matches this cell file."""
        a = conn.info["arm"]
        mine = next((x for x in spec.arms if x.name == a["name"]), None)
        if mine is None:
            raise BackendError(f"the server drives arm '{a['name']}', which this cell file does not have "
                               f"(its arms: {', '.join(x.name for x in spec.arms)}); use the server's cell file")
        arm = RemoteArm(conn, a["name"], spec)
        if list(arm.joint_names) != list(a["joint_names"]):
            raise BackendError(f"arm '{a['name']}': the server's joints {a['joint_names']} differ from the "
                               f"cell file's {list(arm.joint_names)}; use the server's cell file")
        for what, local, remote in (("lower limits", arm.safety.lower, a["lower"]),
                                    ("upper limits", arm.safety.upper, a["upper"]),
                                    ("base pose", np.asarray(arm.base.A).reshape(-1), a["base"])):
            if not np.allclose(local, np.asarray(remote, dtype=float), atol=1e-6):
                raise BackendError(f"arm '{a['name']}': the server's {what} differ from this cell file's; "
                                   "client and server must load the same cell file")
        return arm

    def object_pose(self, name: str) -> SE3:
        objects = self.conn.request("world")["objects"]
        if name in objects:
            return SE3(np.asarray(objects[name], dtype=float).reshape(4, 4), check=False)
        obj = next((o for o in self.spec.objects if o.name == name), None)
        if obj is None:
            raise ConfigError(f"unknown object '{name}'; the cell's objects are: "
                              f"{', '.join(o.name for o in self.spec.objects)}")
        return obj.pose.se3()  # the driver cannot perceive it: the cell file's pose

    def held_object(self, arm: str) -> str | None:
        held = self.conn.request("world").get("held")
        return str(held) if held is not None else None

    def open_sampler(self, arm: str, rate: float, on_sample: SampleSink) -> RemoteSampler:
        """Sample the server's state stream at ``rate`` Hz of server time (the Backend hook for recordings).

        A thread reads it on a second connection of its own (observe-only, no lease), so the
        script moving the arm keeps this backend's connection to itself.
        """
        from robocell.hardware.sampling import RemoteSampler

        if arm not in self.arms:
            raise ConfigError(f"unknown arm '{arm}'; the server at {self.conn.address} drives "
                              f"{', '.join(self.arms)}")
        c = self.conn
        return RemoteSampler(Connection(c.address, keys=c.keys, timeout=c.timeout, queue_states=True), rate,
                             on_sample)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)  # real time passes on a real arm; the heartbeat thread keeps the lease

    def close(self) -> None:
        self.conn.close()


def create(spec: CellSpec, address: str, **options: Any) -> RemoteBackend:
    """Factory for ``tcp://host:port`` (and ``ipc://``) in :func:`robocell.core.backends.create_backend`."""
    for sim_only in ("gui", "realtime", "record", "camera"):
        if options.pop(sim_only, None):
            raise ConfigError(f"option '{sim_only}' only applies to the simulator; "
                              f"the arm at {address} runs in real time on its server")
    if options.get("seed") is not None and "state_drop" not in options:
        raise ConfigError(f"--seed randomises a simulated cell; the objects at {address} are where they are")
    known = {"keys", "timeout", "connect_timeout", "observe", "latency", "state_drop", "seed", "liveness"}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"unknown option(s) for a remote arm: {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    try:
        return RemoteBackend(spec, address, **options)
    except ConnectionLost as exc:
        text = str(exc)  # a connect failure names the address, the deadline and the likely causes itself
        raise BackendError(text if text.startswith("could not connect") else
                           f"could not set up the arm at {address}: {text}") from exc
