"""Universal Robots safety and robot modes turned into robocell fault names.

The numbers are the controller's own enums as RTDE reports them
(``safety_mode`` and ``robot_mode`` outputs; ur_rtde's
``RTDEReceiveInterface.getSafetyMode()`` / ``getRobotMode()``), as listed in
UR's RTDE guide and in ur_client_library's ``SafetyMode`` / ``RobotMode``.
"""

from __future__ import annotations

from enum import StrEnum


class URFault(StrEnum):
    """Fault names a UR driver reports in ``DriverState.faults``."""

    PROTECTIVE_STOP = "protective_stop"
    EMERGENCY_STOP = "emergency_stop"
    SYSTEM_EMERGENCY_STOP = "system_emergency_stop"
    ROBOT_EMERGENCY_STOP = "robot_emergency_stop"
    SAFEGUARD_STOP = "safeguard_stop"
    AUTOMATIC_MODE_SAFEGUARD_STOP = "automatic_mode_safeguard_stop"
    THREE_POSITION_ENABLING_STOP = "three_position_enabling_stop"
    SAFETY_RECOVERY = "safety_recovery_mode"
    SAFETY_VIOLATION = "safety_violation"
    SAFETY_FAULT = "safety_fault"
    VALIDATE_JOINT_ID = "validate_joint_id"
    UNDEFINED_SAFETY_MODE = "undefined_safety_mode"
    ROBOT_NOT_RUNNING = "robot_not_running"  # power off, idle, booting, ...: see the mode suffix
    CONTROL_SCRIPT_STOPPED = "control_script_stopped"  # ur_rtde's script no longer runs (stop pressed, ...)
    RECEIVE_DISCONNECTED = "rtde_receive_disconnected"
    CONTROL_DISCONNECTED = "rtde_control_disconnected"
    SERVO_REJECTED = "servo_command_rejected"
    GRIPPER_FAULT = "gripper_fault"
    GRIPPER_CONNECTION_LOST = "gripper_connection_lost"


# safety_mode: 1 NORMAL and 2 REDUCED are not faults.
SAFETY_MODE_FAULTS: dict[int, URFault] = {
    3: URFault.PROTECTIVE_STOP,
    4: URFault.SAFETY_RECOVERY,
    5: URFault.SAFEGUARD_STOP,
    6: URFault.SYSTEM_EMERGENCY_STOP,
    7: URFault.ROBOT_EMERGENCY_STOP,
    8: URFault.SAFETY_VIOLATION,
    9: URFault.SAFETY_FAULT,
    10: URFault.VALIDATE_JOINT_ID,
    11: URFault.UNDEFINED_SAFETY_MODE,
    12: URFault.AUTOMATIC_MODE_SAFEGUARD_STOP,
    13: URFault.THREE_POSITION_ENABLING_STOP,
}
SAFETY_MODE_OK = (1, 2)

ROBOT_MODES: dict[int, str] = {
    -1: "no_controller",
    0: "disconnected",
    1: "confirm_safety",
    2: "booting",
    3: "power_off",
    4: "power_on",
    5: "idle",
    6: "backdrive",
    7: "running",
    8: "updating_firmware",
}
ROBOT_MODE_RUNNING = 7


def safety_fault(mode: int) -> str | None:
    """Fault name for a safety mode, None when the arm may move; unknown modes are faults."""
    if mode in SAFETY_MODE_OK:
        return None
    known = SAFETY_MODE_FAULTS.get(mode)
    return str(known) if known is not None else f"safety_mode_{mode}"


def robot_mode_fault(mode: int) -> str | None:
    """``robot_not_running:<mode>`` unless the arm is powered and its brakes released."""
    if mode == ROBOT_MODE_RUNNING:
        return None
    return f"{URFault.ROBOT_NOT_RUNNING}:{ROBOT_MODES.get(mode, str(mode))}"
