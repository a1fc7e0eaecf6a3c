"""Robotiq 2F gripper through the Robotiq URCap's socket server on the UR controller.

ur_rtde 1.6's Python bindings have no Robotiq class (its RobotiqGripper is
C++ only), so this is a small client for the protocol the Robotiq URCap
exposes on TCP port 63352 of the robot controller: one ASCII line per request,

- ``SET VAR value [VAR value ...]\\n`` -> ``ack``
- ``GET VAR\\n`` -> ``VAR value``

with the gripper registers ACT (activate), GTO (go to), POS (position
0..255, 0 = open), SPE (speed 0..255), FOR (force 0..255) and the read-only
STA (0 reset, 1 activating, 3 active), PRE (echo of the requested position),
OBJ (0 moving, 1 stopped on an object while opening, 2 stopped on an object
while closing, 3 at the requested position) and FLT (fault code, 0 = none).
Source: the 2F-85 example that ships with ur_rtde's documentation
(sdurobotics/ur_rtde ``doc/_static/gripper_2f85.py``) and Robotiq's 2F-85
manual (register map, 85 mm stroke, 20-235 N grip force, 20-150 mm/s).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from robocell.errors import BackendError, ConfigError

URCAP_PORT = 63352

# Robotiq 2F-85 data sheet: the ranges the 0..255 registers span.
FORCE_RANGE = (20.0, 235.0)  # N grip force
SPEED_RANGE = (0.020, 0.150)  # m/s finger speed

# OBJ register values
OBJ_MOVING = 0
OBJ_CONTACT_OPENING = 1
OBJ_CONTACT_CLOSING = 2
OBJ_AT_POSITION = 3
STA_ACTIVE = 3


class RobotiqError(BackendError):
    """The Robotiq URCap socket did not answer as the protocol says."""


@dataclass(frozen=True)
class RobotiqStatus:
    """One reading of the gripper's status registers."""

    pos: int  # measured position, 0..255
    pre: int  # echo of the requested position: equals the last POS request once the gripper took it
    obj: int  # object detection, see OBJ_* above
    flt: int  # fault code, 0 = none

    @property
    def moving(self) -> bool:
        return self.obj == OBJ_MOVING

    @property
    def grasped(self) -> bool:
        return self.obj in (OBJ_CONTACT_OPENING, OBJ_CONTACT_CLOSING)


@dataclass(frozen=True)
class RobotiqScale:
    """Maps SI units onto the 0..255 registers.

    Width is linear in the position register between the calibrated open and
    closed positions (the 2F-85 nominally 0 -> 85 mm and 255 -> 0 mm; a real
    unit's end stops can be measured and given as open_pos / closed_pos).
    """

    max_width: float = 0.085  # m at open_pos
    open_pos: int = 0
    closed_pos: int = 255

    def __post_init__(self) -> None:
        if not 0 <= self.open_pos < self.closed_pos <= 255:
            raise ConfigError(
                f"gripper_open_pos={self.open_pos} and gripper_closed_pos={self.closed_pos} must satisfy "
                "0 <= open < closed <= 255 (Robotiq position registers)"
            )
        if not self.max_width > 0:
            raise ConfigError(f"gripper max width {self.max_width} m must be > 0")

    def width(self, pos: int) -> float:
        frac = (self.closed_pos - pos) / (self.closed_pos - self.open_pos)
        return float(min(max(frac, 0.0), 1.0) * self.max_width)

    def pos(self, width: float) -> int:
        if not 0.0 <= width <= self.max_width + 1e-9:
            raise ConfigError(
                f"gripper width {width:.4f} m is outside 0..{self.max_width:.4f} m (the gripper's stroke); "
                "give a width within the stroke"
            )
        span = self.closed_pos - self.open_pos
        return int(round(self.closed_pos - width / self.max_width * span))

    @staticmethod
    def force(newton: float) -> int:
        lo, hi = FORCE_RANGE
        if not lo <= newton <= hi:
            raise ConfigError(
                f"gripper force {newton:g} N is outside the Robotiq 2F-85's {lo:g}..{hi:g} N; "
                "give a force in that range"
            )
        return int(round((newton - lo) / (hi - lo) * 255))

    @staticmethod
    def speed(m_per_s: float) -> int:
        lo, hi = SPEED_RANGE
        if not lo <= m_per_s <= hi:
            raise ConfigError(
                f"gripper_speed {m_per_s:g} m/s is outside the Robotiq 2F-85's {lo:g}..{hi:g} m/s; "
                "give a speed in that range"
            )
        return int(round((m_per_s - lo) / (hi - lo) * 255))


class RobotiqClient:
    """Blocking request/reply client of the URCap socket; one request at a time."""

    def __init__(self, host: str, port: int = URCAP_PORT, timeout: float = 1.0) -> None:
        self.host, self.port = host, port
        self._lock = threading.Lock()
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise BackendError(
                f"could not connect to the Robotiq gripper at {host}:{port} ({exc}); check that the "
                "Robotiq URCap is installed on the robot and the gripper is plugged in, or start "
                "the driver with gripper=none"
            ) from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _request(self, line: str) -> str:
        with self._lock:
            try:
                self._sock.sendall(line.encode("ascii"))
                # Replies are a few bytes and come in one segment (as the URCap sends them).
                data = self._sock.recv(1024)
            except OSError as exc:
                raise RobotiqError(f"Robotiq gripper at {self.host}:{self.port}: '{line.strip()}' failed: {exc}") from exc
        if not data:
            raise RobotiqError(f"Robotiq gripper at {self.host}:{self.port} closed the connection")
        return data.decode("ascii", errors="replace").strip()

    def set(self, **registers: int) -> None:
        cmd = "SET" + "".join(f" {k} {int(v)}" for k, v in registers.items()) + "\n"
        reply = self._request(cmd)
        if reply != "ack":
            raise RobotiqError(f"Robotiq gripper did not acknowledge '{cmd.strip()}' (replied {reply!r})")

    def get(self, register: str) -> int:
        reply = self._request(f"GET {register}\n")
        parts = reply.split()
        if len(parts) != 2 or parts[0] != register:
            raise RobotiqError(f"Robotiq gripper answered {reply!r} to 'GET {register}'")
        try:
            return int(parts[1])
        except ValueError:
            raise RobotiqError(f"Robotiq gripper answered {reply!r} to 'GET {register}'") from None

    def activate(self, timeout: float = 5.0) -> None:
        """Activate once (the fingers travel to calibrate); no-op when already active."""
        if self.get("STA") == STA_ACTIVE:
            return
        self.set(ACT=1)
        deadline = time.monotonic() + timeout
        while self.get("STA") != STA_ACTIVE:
            if time.monotonic() > deadline:
                raise RobotiqError(
                    f"Robotiq gripper at {self.host} did not become active within {timeout:g} s; "
                    "check for a gripper fault on the pendant"
                )
            time.sleep(0.01)  # the gripper's own activation sequence takes about a second

    def move(self, pos: int, speed: int, force: int) -> None:
        self.set(POS=pos, SPE=speed, FOR=force, GTO=1)

    def status(self) -> RobotiqStatus:
        return RobotiqStatus(pos=self.get("POS"), pre=self.get("PRE"), obj=self.get("OBJ"), flt=self.get("FLT"))

    def close(self) -> None:
        self._sock.close()
