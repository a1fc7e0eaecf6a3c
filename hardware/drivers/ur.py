"""Universal Robots (CB3 / e-Series) driver through ur_rtde.

Written against ur_rtde 1.6's Python API (SDU Robotics, sdurobotics/ur_rtde;
signatures as its pybind11 bindings report them):

- ``RTDEControlInterface.servoJ(q, speed, acceleration, time, lookahead_time, gain) -> bool``:
  speed and acceleration are "NOT used in current version"; ``time`` is the
  period the setpoint is valid for, lookahead_time in [0.03, 0.2] s, gain in
  [100, 2000].  ``initPeriod() -> timedelta`` / ``waitPeriod(t_start)`` pace the
  loop on the controller's steady clock, as in ur_rtde's servoJ example.
- ``servoStop(a=10.0)`` (tool deceleration, m/s^2), ``stopScript()``,
  ``setTcp(pose)``, ``isProgramRunning()``, ``isConnected()``, ``reconnect()``,
  ``disconnect()``.
- ``RTDEReceiveInterface.getActualQ()``, ``getActualQd()``,
  ``getActualTCPPose()`` ([x, y, z, rx, ry, rz], rotation vector),
  ``isProtectiveStopped()``, ``isEmergencyStopped()``, ``getSafetyMode()``,
  ``getRobotMode()``.
- A failed connection raises ``RuntimeError("... Could not connect to: HOST at 30004, verify the IP")``.

The server does all planning and safety checks; this driver forwards one
checked joint setpoint per period to servoJ and reports what the controller
measures.  Gripper: a Robotiq 2F through the URCap socket (:mod:`.robotiq`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from robocell.errors import BackendError, ConfigError, SafetyViolation
from robocell.hardware.driver import DriverInfo, DriverState
from robocell.hardware.drivers.robotiq import RobotiqClient, RobotiqError, RobotiqScale, RobotiqStatus
from robocell.hardware.drivers.ur_faults import URFault, robot_mode_fault, safety_fault
from robocell.hardware.drivers.ur_setup import (
    RTDEConnections,
    URConnections,
    choice,
    fixed_offset,
    flag,
    integer,
    number,
    pose_matrix,
    pose_vector,
)
from robocell.motion.kinematics import urdf_joints

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec

log = logging.getLogger(__name__)

UR_DOF = 6
# ur_rtde's servoJ ignores speed and acceleration; its examples pass 0.5 and 0.5.
_SERVO_SPEED = 0.5
_SERVO_ACCEL = 0.5
_RECONNECT_EVERY = 1.0  # s between reconnection attempts while RTDE is down


def _connect_hint(host: str) -> str:
    return (
        f"check that the robot at {host} is powered on and reachable (ping {host}), that RTDE port 30004 "
        "is not blocked by a firewall, that an e-Series robot is in Remote Control mode (pendant, top right), "
        "that no other program holds the RTDE control interface, and that the driver option host= is right"
    )


class URDriver:
    """A Universal Robots arm (6 joints) driven by servoJ at the controller's rate.

    Options (all also accepted as strings, as ``--driver-option NAME=VALUE`` gives them):

    - ``host``: the controller's IP or name (required).
    - ``frequency``: control rate in Hz, 1..500 (e-Series 500, CB3 125).
    - ``lookahead``: servoJ lookahead time in s, 0.03..0.2 (smaller follows tighter, larger smooths).
    - ``gain``: servoJ proportional gain, 100..2000.
    - ``gripper``: ``robotiq`` (2F via the URCap socket, port 63352) or ``none``.
    - ``gripper_speed``: finger speed in m/s, 0.02..0.15.
    - ``gripper_open_pos`` / ``gripper_closed_pos``: position registers of the open and closed end stops.
    - ``gripper_poll``: s between gripper status reads (each is four socket round trips).
    - ``gripper_activate``: activate the gripper on connect if it is not (its fingers travel once).
    - ``set_tcp``: set the controller's TCP offset to the cell model's flange -> TCP transform.
    - ``flange_link``: the model's flange link (``tool0``) for ``set_tcp``.
    - ``stop_deceleration``: tool deceleration of ``stop()`` in m/s^2, 0.5..20.
    - ``rtde``: a :class:`URConnections` (tests inject a fake; default: the real ur_rtde).
    """

    def __init__(
        self,
        spec: CellSpec,
        arm: str,
        host: str = "",
        frequency: float | str = 500.0,
        lookahead: float | str = 0.1,
        gain: float | str = 300.0,
        gripper: str = "robotiq",
        gripper_speed: float | str = 0.1,
        gripper_open_pos: int | str = 0,
        gripper_closed_pos: int | str = 255,
        gripper_poll: float | str = 0.02,
        gripper_activate: bool | str = True,
        set_tcp: bool | str = True,
        flange_link: str = "tool0",
        stop_deceleration: float | str = 10.0,
        rtde: URConnections | None = None,
    ) -> None:
        """Check every driver option, then connect to the controller (and gripper), undoing all if one fails.

        Long on purpose: a flat list of option checks, each naming its option, value and range,
        then one connect sequence with one clean-up; split, the options would be read in one
        place and checked in another.
        """
        host = str(host).strip()
        if not host:
            raise ConfigError(
                "driver option host is missing: give the UR controller's address, "
                "e.g. --driver-option host=192.168.1.10"
            )
        self.host = host
        self.frequency = number("frequency", frequency, 1.0, 500.0, " Hz (e-Series 500, CB3 125)")
        self.dt = 1.0 / self.frequency
        self.lookahead = number("lookahead", lookahead, 0.03, 0.2, " s (ur_rtde servoJ lookahead_time)")
        self.gain = number("gain", gain, 100.0, 2000.0, " (ur_rtde servoJ gain)")
        self.stop_deceleration = number("stop_deceleration", stop_deceleration, 0.5, 20.0, " m/s^2")
        self.gripper_poll = number("gripper_poll", gripper_poll, 0.0, 10.0, " s")
        use_gripper = choice("gripper", gripper, ("robotiq", "none")) == "robotiq"

        arm_spec = spec.arm(arm)
        model = arm_spec.arm_model()
        if model.dof != UR_DOF:
            raise ConfigError(
                f"arm '{arm}' has {model.dof} joints ({', '.join(model.joint_names)}), but a Universal Robots "
                f"arm has {UR_DOF}; give a UR arm (e.g. model: ur5e) in the cell file"
            )
        urdf = model.resolved_urdf()
        joints = urdf_joints(urdf)
        lower = np.array([joints[j][2] for j in model.joint_names])
        upper = np.array([joints[j][3] for j in model.joint_names])
        tcp_offset = fixed_offset(urdf, flange_link, model.tcp_link) if flag("set_tcp", set_tcp) else None

        self._scale: RobotiqScale | None = None
        if use_gripper:
            self._scale = RobotiqScale(
                max_width=model.max_width if model.max_width > 0 else 0.085,
                open_pos=integer("gripper_open_pos", gripper_open_pos, 0, 255),
                closed_pos=integer("gripper_closed_pos", gripper_closed_pos, 0, 255),
            )
            self._gripper_speed = RobotiqScale.speed(number("gripper_speed", gripper_speed, 0.0, 1.0))
            self._default_force = RobotiqScale.force(min(max(arm_spec.gripper.force, 20.0), 235.0))
        self.info = DriverInfo(
            joint_names=tuple(model.joint_names),
            lower=lower,
            upper=upper,
            control_rate=self.frequency,
            gripper_max_width=self._scale.max_width if self._scale else 0.0,
            vendor="Universal Robots (ur_rtde)",
        )

        sdk = rtde if rtde is not None else RTDEConnections(self.frequency)
        self._recv: Any = None
        self._ctrl: Any = None
        self._grip: RobotiqClient | None = None
        try:
            self._recv = self._connect("RTDE receive interface", sdk.receive)
            self._ctrl = self._connect("RTDE control interface", sdk.control)
            if tcp_offset is not None and not self._ctrl.setTcp(pose_vector(tcp_offset)):
                raise BackendError(f"the UR controller at {host} refused setTcp; check the pendant for a fault")
            if use_gripper:
                self._grip = sdk.gripper(host)
                if flag("gripper_activate", gripper_activate):
                    self._grip.activate()
        except BaseException:
            self.close()
            raise

        self._period_start: Any = None
        self._servo_fault: str | None = None
        self._gripper_fault: str | None = None
        self._last_reconnect = -np.inf
        self._status: RobotiqStatus | None = None
        self._status_time = -np.inf
        self._requested_pos: int | None = None

    def _connect(self, what: str, make: Any) -> Any:
        try:
            return make(self.host)
        except RuntimeError as exc:  # ur_rtde raises RuntimeError when it cannot connect
            raise BackendError(f"could not connect the {what} to {self.host}: {exc}; {_connect_hint(self.host)}") from exc

    # ------------------------------------------------------------------ state
    def read(self) -> DriverState:
        """Measured joints, TCP pose (base frame, 4x4), gripper and faults."""
        faults: list[str] = []
        if not self._recv.isConnected():
            faults.append(URFault.RECEIVE_DISCONNECTED)
            self._try_reconnect(self._recv)
        if not self._ctrl.isConnected():
            faults.append(URFault.CONTROL_DISCONNECTED)
            self._try_reconnect(self._ctrl)
        q = np.asarray(self._recv.getActualQ(), dtype=float)
        qd = np.asarray(self._recv.getActualQd(), dtype=float)
        tcp = pose_matrix(self._recv.getActualTCPPose())
        faults.extend(self._safety_faults())
        width, grasped = 0.0, False
        if self._grip is not None and self._scale is not None:
            status = self._gripper_status()
            if status is not None:
                width, grasped = self._scale.width(status.pos), status.grasped
                if status.flt:
                    faults.append(f"{URFault.GRIPPER_FAULT}:{status.flt:#04x}")
            if self._gripper_fault:
                faults.append(self._gripper_fault)
        if self._servo_fault:
            faults.append(self._servo_fault)
        return DriverState(q=q, qd=qd, gripper_width=width, grasped=grasped, tcp=tcp,
                           faults=tuple(dict.fromkeys(str(f) for f in faults)))

    def _safety_faults(self) -> list[str]:
        out: list[str] = []
        if self._recv.isEmergencyStopped():
            out.append(URFault.EMERGENCY_STOP)
        if self._recv.isProtectiveStopped():
            out.append(URFault.PROTECTIVE_STOP)
        for fault in (safety_fault(int(self._recv.getSafetyMode())), robot_mode_fault(int(self._recv.getRobotMode()))):
            if fault:
                out.append(fault)
        if self._ctrl.isConnected() and not self._ctrl.isProgramRunning():
            out.append(URFault.CONTROL_SCRIPT_STOPPED)
        return out

    def _try_reconnect(self, iface: Any) -> None:
        # Rate-limited: reconnect() blocks for the TCP handshake.  Reconnecting only restores
        # the stream; the server decides whether motion may resume (it never resumes a stale target).
        now = time.monotonic()
        if now - self._last_reconnect < _RECONNECT_EVERY:
            return
        self._last_reconnect = now
        try:
            iface.reconnect()
        except RuntimeError as exc:
            log.warning("UR %s: reconnect failed: %s", self.host, exc)

    # ------------------------------------------------------------------ motion
    def command(self, q: np.ndarray, qd: np.ndarray) -> None:
        """servoJ to ``q`` for one period (``qd`` unused: servoJ takes positions only)."""
        target = np.asarray(q, dtype=float)
        if target.shape != (UR_DOF,) or not np.all(np.isfinite(target)):
            raise SafetyViolation(
                f"joint setpoint {target.tolist()} is not {UR_DOF} finite angles in rad; nothing was sent to {self.host}"
            )
        if self._period_start is None:
            self._period_start = self._ctrl.initPeriod()
        try:
            accepted = self._ctrl.servoJ(target.tolist(), _SERVO_SPEED, _SERVO_ACCEL, self.dt, self.lookahead, self.gain)
        except RuntimeError as exc:  # e.g. "RTDE control script is not running"
            log.warning("UR %s: servoJ failed: %s", self.host, exc)
            accepted = False
        self._servo_fault = None if accepted else URFault.SERVO_REJECTED

    def wait_period(self) -> None:
        """Sleep until this period ends on the controller's clock, then start the next one."""
        if self._period_start is None:
            self._period_start = self._ctrl.initPeriod()
        self._ctrl.waitPeriod(self._period_start)
        self._period_start = self._ctrl.initPeriod()

    def stop(self) -> None:
        """servoStop (decelerate) then stopScript; both are tried even if the first fails."""
        errors: list[str] = []
        for name, call in (("servoStop", lambda: self._ctrl.servoStop(self.stop_deceleration)),
                           ("stopScript", self._ctrl.stopScript)):
            try:
                call()
            except RuntimeError as exc:
                errors.append(f"{name}: {exc}")
        self._period_start = None
        if errors:
            raise BackendError(
                f"stopping the UR at {self.host} failed ({'; '.join(errors)}); stop the arm from the pendant"
            )

    # ------------------------------------------------------------------ gripper
    def gripper(self, width: float | None, force: float | None) -> None:
        """Open to ``width`` m, or close with ``force`` N; returns at once."""
        if self._grip is None or self._scale is None:
            raise ConfigError(f"the UR driver for {self.host} runs without a gripper (gripper=none)")
        if (width is None) == (force is None):
            raise ConfigError(f"gripper command needs exactly one of width or force, got width={width}, force={force}")
        if width is not None:
            pos, force_reg = self._scale.pos(width), self._default_force
        else:
            assert force is not None
            pos, force_reg = self._scale.closed_pos, RobotiqScale.force(force)
        try:
            self._grip.move(pos, self._gripper_speed, force_reg)
        except RobotiqError as exc:
            self._gripper_fault = URFault.GRIPPER_CONNECTION_LOST
            raise BackendError(f"gripper command to {self.host} failed: {exc}") from exc
        self._requested_pos = pos
        self._status_time = -np.inf  # next read must see the new request

    def gripper_busy(self) -> bool:
        """True until the gripper took the last request and stopped (at the position or on an object)."""
        if self._requested_pos is None:
            return False
        status = self._gripper_status()
        if status is None:
            return False  # the fault is reported by read(); waiting would never end
        return status.pre != self._requested_pos or status.moving

    def _gripper_status(self) -> RobotiqStatus | None:
        assert self._grip is not None
        now = time.monotonic()
        if self._status is not None and now - self._status_time < self.gripper_poll:
            return self._status
        try:
            self._status = self._grip.status()
            self._gripper_fault = None
        except RobotiqError as exc:
            log.warning("UR %s: gripper status failed: %s", self.host, exc)
            self._gripper_fault = URFault.GRIPPER_CONNECTION_LOST
            return None
        self._status_time = now
        return self._status

    # ------------------------------------------------------------------ misc
    def object_poses(self) -> dict[str, np.ndarray]:
        return {}  # a UR has no perception of its own

    def close(self) -> None:
        """Disconnect everything; safe to call twice."""
        grip, self._grip = self._grip, None
        if grip is not None:
            grip.close()
        for attr in ("_ctrl", "_recv"):
            iface = getattr(self, attr)
            setattr(self, attr, None)
            if iface is not None:
                iface.disconnect()
