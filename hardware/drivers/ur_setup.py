"""Everything a UR driver needs before its first control tick.

- :class:`URConnections`: where the SDK objects come from (injected, so tests
  pass a fake of ur_rtde instead of patching module paths);
  :class:`RTDEConnections` is the real one and imports ur_rtde lazily.
- Driver options given as strings on the command line (``--driver-option
  frequency=125``) are checked and converted here, with messages naming the
  option, the value and the allowed range.
- The tool offset the controller must use so that its TCP is the cell model's
  TCP, read from the same URDF the simulator and IK load.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robocell.errors import BackendError, ConfigError
from robocell.hardware.drivers.robotiq import URCAP_PORT, RobotiqClient


class URConnections(Protocol):
    """Makes the three connections a UR driver holds; each raises on failure."""

    def control(self, host: str) -> Any:
        """An ``rtde_control.RTDEControlInterface`` (or a fake with its methods)."""
        ...

    def receive(self, host: str) -> Any:
        """An ``rtde_receive.RTDEReceiveInterface`` (or a fake with its methods)."""
        ...

    def gripper(self, host: str) -> RobotiqClient:
        """A client of the Robotiq URCap socket on ``host``."""
        ...


class RTDEConnections:
    """The real ur_rtde interfaces (``pip install 'robocell[ur]'``).

    Constructor signatures as in ur_rtde 1.6's Python bindings:
    ``RTDEControlInterface(hostname, frequency=-1.0, flags=..., ur_cap_port=50002, rt_priority=0)`` and
    ``RTDEReceiveInterface(hostname, frequency=-1.0, variables=[], verbose=False, ...)``.
    """

    def __init__(self, frequency: float, gripper_port: int = URCAP_PORT) -> None:
        self.frequency = frequency
        self.gripper_port = gripper_port
        try:
            import rtde_control
            import rtde_receive
        except ImportError as exc:
            raise BackendError(
                "the Universal Robots driver needs ur_rtde, which is not installed; "
                "install it with: pip install 'robocell[ur]'  (or pip install 'ur_rtde>=1.5')"
            ) from exc
        self._control_cls = rtde_control.RTDEControlInterface
        self._receive_cls = rtde_receive.RTDEReceiveInterface

    def control(self, host: str) -> Any:
        return self._control_cls(host, self.frequency)

    def receive(self, host: str) -> Any:
        return self._receive_cls(host, self.frequency)

    def gripper(self, host: str) -> RobotiqClient:
        return RobotiqClient(host, self.gripper_port)


def number(name: str, value: Any, lo: float, hi: float, hint: str = "") -> float:
    """A driver option as a float in [lo, hi]; strings from the command line are parsed."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"driver option {name}={value!r} is not a number; give {name} in {lo:g}..{hi:g}") from None
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ConfigError(f"driver option {name}={value!r} is outside {lo:g}..{hi:g}{hint}")
    return v


def integer(name: str, value: Any, lo: int, hi: int) -> int:
    v = number(name, value, lo, hi)
    if v != int(v):
        raise ConfigError(f"driver option {name}={value!r} must be a whole number in {lo}..{hi}")
    return int(v)


def flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"driver option {name}={value!r} is not a boolean; give {name}=true or {name}=false")


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise ConfigError(f"driver option {name}={value!r} is not one of: {', '.join(allowed)}")
    return text


def _rpy_matrix(rpy: list[float]) -> np.ndarray:
    # URDF: fixed-axis roll-pitch-yaw, R = Rz(yaw) Ry(pitch) Rx(roll)
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def fixed_offset(urdf: Path, flange: str, tcp: str) -> np.ndarray:
    """4x4 transform flange -> tcp through the URDF's fixed joints.

    The controller applies its TCP offset rigidly to the flange, so only a
    chain of fixed joints between the two links can be expressed as one.
    """
    parent_joint: dict[str, ET.Element] = {}
    for joint in ET.parse(urdf).getroot().iter("joint"):
        child = joint.find("child")
        if child is not None:
            parent_joint[child.get("link", "")] = joint
    def parent_of(link: str) -> str:
        parent = parent_joint[link].find("parent")
        return parent.get("link", "") if parent is not None else ""

    ancestors, link = [tcp], tcp
    while link in parent_joint:
        link = parent_of(link)
        ancestors.append(link)
    t = np.eye(4)
    link = tcp
    while link != flange:
        j = parent_joint.get(link)
        if j is None or flange not in ancestors:
            raise ConfigError(
                f"link '{tcp}' is not below flange link '{flange}' in {urdf}; give the arm's flange link "
                "with the driver option flange_link=NAME, or set_tcp=false to keep the pendant's TCP"
            )
        if j.get("type") != "fixed":
            raise ConfigError(
                f"joint '{j.get('name')}' between '{flange}' and '{tcp}' in {urdf} is not fixed, so the TCP "
                "is not a constant offset from the flange; use set_tcp=false and set the TCP on the pendant"
            )
        origin = j.find("origin")
        xyz = [float(v) for v in (origin.get("xyz", "0 0 0") if origin is not None else "0 0 0").split()]
        rpy = [float(v) for v in (origin.get("rpy", "0 0 0") if origin is not None else "0 0 0").split()]
        step = np.eye(4)
        step[:3, :3] = _rpy_matrix(rpy)
        step[:3, 3] = xyz
        t = step @ t
        link = parent_of(link)
    return t


def pose_vector(t: np.ndarray) -> list[float]:
    """4x4 -> UR pose [x, y, z, rx, ry, rz] (rotation vector, rad)."""
    from scipy.spatial.transform import Rotation

    return [*map(float, t[:3, 3]), *map(float, Rotation.from_matrix(t[:3, :3]).as_rotvec())]


def pose_matrix(p: list[float] | np.ndarray) -> np.ndarray:
    """UR pose [x, y, z, rx, ry, rz] -> 4x4."""
    from scipy.spatial.transform import Rotation

    v = np.asarray(p, dtype=float)
    t = np.eye(4)
    t[:3, :3] = Rotation.from_rotvec(v[3:6]).as_matrix()
    t[:3, 3] = v[:3]
    return t
