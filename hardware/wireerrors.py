"""The server's error codes as robocell exceptions (docs/protocol.md): one table, read by every client."""

from __future__ import annotations

from robocell.errors import (
    ConfigError, KinematicsError, LeaseError, MotionError, ProtectiveStop, ProtocolError, RemoteError,
    SafetyViolation, UnreachableError,
)

_ERRORS: dict[str, type[Exception]] = {
    "SAFETY": SafetyViolation,
    "UNREACHABLE": UnreachableError,
    "STOPPED": ProtectiveStop,
    "BUSY": MotionError,
    "FAULT": MotionError,
    "BAD_FIELD": ConfigError,
    "UNSUPPORTED": ConfigError,
    "NO_LEASE": LeaseError,
    "LEASE_HELD": LeaseError,
    "BAD_MESSAGE": ProtocolError,
    "BAD_VERSION": ProtocolError,
    "TOO_LARGE": ProtocolError,
    "UNKNOWN_OP": ProtocolError,
    "RATE_LIMITED": RemoteError,  # this client sent too many requests per second; nothing was done
}


def error_for(code: str, message: str) -> Exception:
    """The exception for a refusal with wire ``code``: its message, and the code for a bug report."""
    cls = _ERRORS.get(code, RemoteError)
    if cls is UnreachableError and "IK" not in message and "reach" not in message:
        cls = KinematicsError
    return cls(f"{message} [server code {code}]")
