"""A fake of ur_rtde's Python API and of the Robotiq URCap socket, for the UR driver's tests.

Same class roles, method names and argument order as ur_rtde 1.6
(``RTDEControlInterface`` / ``RTDEReceiveInterface``; see
``test_fake_matches_ur_rtde`` which checks the names against the real
package when it is installed).  The arm is simulated, not scripted:

- time is simulated: ``initPeriod()`` returns the simulated clock as a
  ``timedelta`` (the real one returns the controller's steady-clock time), and
  ``waitPeriod(t)`` advances it to ``t + dt`` of the last servoJ, never sleeping;
- while the clock advances, each joint tracks the last servoJ target with a
  first-order lag of time constant ``lookahead_time``, integrated at the 500 Hz
  servo rate; ``getActualQd`` is the resulting joint speed;
- ``getActualTCPPose`` is the flange pose from UR5e DH forward kinematics
  (what the controller computes) times the offset given to ``setTcp``, as
  [x, y, z, rx, ry, rz] with a rotation vector;
- faults are injected with :meth:`FakeUR.protective_stop`, :meth:`FakeUR.emergency_stop`,
  :meth:`FakeUR.drop_connection`; as on the robot, a stop halts the arm and ends the control script.

The URCap fake is a real TCP server on loopback speaking the gripper's ASCII
protocol, so the driver's socket client is exercised for real.
"""

from __future__ import annotations

import math
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robocell.hardware.drivers.robotiq import RobotiqClient

# UR5e DH parameters (UR's published values)
DH_D = (0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996)
DH_A = (0.0, -0.425, -0.3922, 0.0, 0.0, 0.0)
DH_ALPHA = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)
SERVO_RATE = 500.0  # Hz, the e-Series controller's servo loop


def ur5e_dh_fk(q: np.ndarray) -> np.ndarray:
    """Flange pose in the base frame from UR's DH table (standard DH convention)."""
    t = np.eye(4)
    for qi, d, a, al in zip(q, DH_D, DH_A, DH_ALPHA, strict=True):
        ct, st, ca, sa = math.cos(qi), math.sin(qi), math.cos(al), math.sin(al)
        t = t @ np.array([[ct, -st * ca, st * sa, a * ct],
                          [st, ct * ca, -ct * sa, a * st],
                          [0.0, sa, ca, d],
                          [0.0, 0.0, 0.0, 1.0]])
    return t


@dataclass
class FakeUR:
    """The simulated controller both fake interfaces talk to."""

    q: np.ndarray = field(default_factory=lambda: np.array([math.pi, -1.9, 1.9, -math.pi / 2, -math.pi / 2, 0.0]))
    qd: np.ndarray = field(default_factory=lambda: np.zeros(6))
    time: float = 0.0
    target: np.ndarray | None = None
    lookahead: float = 0.1
    servo_dt: float = 0.002
    tcp_offset: list[float] = field(default_factory=lambda: [0.0] * 6)
    safety_mode: int = 1  # NORMAL
    robot_mode: int = 7  # RUNNING
    protective: bool = False
    estop: bool = False
    script_running: bool = True
    connected: bool = True
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def advance(self, until: float) -> None:
        """Integrate the servo loop up to simulated time ``until``."""
        step = 1.0 / SERVO_RATE
        while self.time + 1e-12 < until:
            h = min(step, until - self.time)
            if self.target is not None and self.script_running:
                new = self.target + (self.q - self.target) * math.exp(-h / self.lookahead)
                self.qd = (new - self.q) / h
                self.q = new
            else:
                self.qd = np.zeros(6)
            self.time += h

    # fault injection, with the controller's side effects
    def protective_stop(self) -> None:
        self.protective, self.safety_mode = True, 3
        self._halt()

    def emergency_stop(self) -> None:
        self.estop, self.safety_mode = True, 7
        self._halt()

    def drop_connection(self) -> None:
        self.connected = False

    def _halt(self) -> None:
        self.script_running, self.target, self.qd = False, None, np.zeros(6)


class FakeRTDEControlInterface:
    def __init__(self, robot: FakeUR) -> None:
        self._r = robot

    def _log(self, name: str, *args: Any) -> None:
        self._r.calls.append((name, args))

    def servoJ(self, q: list[float], speed: float, acceleration: float, time: float,  # noqa: N802
               lookahead_time: float, gain: float) -> bool:
        self._log("servoJ", q, speed, acceleration, time, lookahead_time, gain)
        if not self._r.script_running:
            return False
        self._r.target = np.asarray(q, dtype=float)
        self._r.lookahead, self._r.servo_dt = lookahead_time, time
        return True

    def servoStop(self, a: float = 10.0) -> bool:  # noqa: N802
        self._log("servoStop", a)
        self._r.target = None
        return True

    def stopScript(self) -> None:  # noqa: N802
        self._log("stopScript")
        self._r.script_running = False

    def initPeriod(self) -> timedelta:  # noqa: N802
        self._log("initPeriod")
        return timedelta(seconds=self._r.time)

    def waitPeriod(self, t_cycle_start: timedelta) -> None:  # noqa: N802
        self._log("waitPeriod", t_cycle_start)
        self._r.advance(t_cycle_start.total_seconds() + self._r.servo_dt)

    def setTcp(self, tcp_offset: list[float]) -> bool:  # noqa: N802
        self._log("setTcp", tcp_offset)
        self._r.tcp_offset = list(tcp_offset)
        return True

    def getTCPOffset(self) -> list[float]:  # noqa: N802
        return list(self._r.tcp_offset)

    def isProgramRunning(self) -> bool:  # noqa: N802
        return self._r.script_running

    def isConnected(self) -> bool:  # noqa: N802
        return self._r.connected

    def reconnect(self) -> bool:
        self._log("control.reconnect")
        self._r.connected = True
        return True

    def disconnect(self) -> None:
        self._log("control.disconnect")


class FakeRTDEReceiveInterface:
    def __init__(self, robot: FakeUR) -> None:
        self._r = robot

    def getActualQ(self) -> list[float]:  # noqa: N802
        return self._r.q.tolist()

    def getActualQd(self) -> list[float]:  # noqa: N802
        return self._r.qd.tolist()

    def getActualTCPPose(self) -> list[float]:  # noqa: N802
        off = np.eye(4)
        off[:3, :3] = Rotation.from_rotvec(self._r.tcp_offset[3:]).as_matrix()
        off[:3, 3] = self._r.tcp_offset[:3]
        t = ur5e_dh_fk(self._r.q) @ off
        return [*t[:3, 3].tolist(), *Rotation.from_matrix(t[:3, :3]).as_rotvec().tolist()]

    def isProtectiveStopped(self) -> bool:  # noqa: N802
        return self._r.protective

    def isEmergencyStopped(self) -> bool:  # noqa: N802
        return self._r.estop

    def getSafetyMode(self) -> int:  # noqa: N802
        return self._r.safety_mode

    def getRobotMode(self) -> int:  # noqa: N802
        return self._r.robot_mode

    def getTimestamp(self) -> float:  # noqa: N802
        return self._r.time

    def isConnected(self) -> bool:  # noqa: N802
        return self._r.connected

    def reconnect(self) -> bool:
        self._r.calls.append(("receive.reconnect", ()))
        self._r.connected = True
        return True

    def disconnect(self) -> None:
        self._r.calls.append(("receive.disconnect", ()))


class FakeURCap:
    """The Robotiq URCap's socket server (port 63352 on a robot), on a random loopback port.

    The fingers move only when the test says so (:meth:`settle`), so every
    intermediate state can be observed without timing assumptions.
    """

    def __init__(self) -> None:
        self.regs = {"ACT": 0, "GTO": 0, "STA": 0, "POS": 0, "PRE": 0, "OBJ": 3, "FLT": 0, "SPE": 0, "FOR": 0}
        self.pos = 0  # measured finger position register
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._srv.settimeout(5.0)
        self.port = self._srv.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._srv.accept()
        except OSError:
            return  # closed before any client came
        self._conns.append(conn)
        with conn:
            buf = b""
            while True:
                try:
                    chunk = conn.recv(1024)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    conn.sendall(self._answer(line.decode("ascii")))

    def _answer(self, line: str) -> bytes:
        # Registers as the gripper keeps them: a SET of POS is the request; GET POS reads the
        # measured position (self.pos); PRE echoes the request once GTO=1 started the motion.
        with self._lock:
            self.requests.append(line)
            words = line.split()
            if words[0] == "SET":
                for name, value in zip(words[1::2], words[2::2], strict=True):
                    self.regs[name] = int(value)
                if self.regs["ACT"] == 1 and self.regs["STA"] == 0:
                    self.regs["STA"] = 3  # activation completes at once in the fake
                if "GTO" in words[1::2] and self.regs["GTO"] == 1:
                    self.regs["PRE"], self.regs["OBJ"] = self.regs["POS"], 0
                return b"ack"
            if words[0] == "GET":
                reg = words[1]
                return f"{reg} {self.pos if reg == 'POS' else self.regs[reg]}\n".encode("ascii")
            return b"?"

    def settle(self, blocked_at: int | None = None) -> None:
        """Finish the current motion: at the requested position, or stopped on an object at ``blocked_at``."""
        with self._lock:
            if blocked_at is None:
                self.pos, self.regs["OBJ"] = self.regs["PRE"], 3
            else:
                self.pos, self.regs["OBJ"] = blocked_at, 2

    def drop(self) -> None:
        """Cut the connection, as a power loss of the tool flange would."""
        for c in self._conns:
            c.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        # shutdown() wakes a thread blocked in accept() on Linux; close() alone does not
        try:
            self._srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected: nothing to wake
        self._srv.close()
        self._thread.join(timeout=5.0)


class FakeConnections:
    """The driver's ``rtde`` option: hands out the fakes, or fails like ur_rtde when told to."""

    def __init__(self, robot: FakeUR | None = None, urcap: FakeURCap | None = None,
                 refuse: str | None = None) -> None:
        self.robot = robot or FakeUR()
        self.urcap = urcap
        self.refuse = refuse  # "receive" | "control": that connection fails as with no robot
        self.hosts: list[str] = []

    def _check(self, which: str, host: str) -> None:
        self.hosts.append(host)
        if self.refuse == which:
            raise RuntimeError(f"Error: Could not connect to: {host} at 30004, verify the IP")

    def control(self, host: str) -> FakeRTDEControlInterface:
        self._check("control", host)
        return FakeRTDEControlInterface(self.robot)

    def receive(self, host: str) -> FakeRTDEReceiveInterface:
        self._check("receive", host)
        return FakeRTDEReceiveInterface(self.robot)

    def gripper(self, host: str) -> RobotiqClient:
        if self.urcap is None:
            raise AssertionError("this test made no FakeURCap but the driver wants a gripper")
        return RobotiqClient("127.0.0.1", self.urcap.port)
