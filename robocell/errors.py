"""One exception hierarchy for robocell.

Every error a user can cause derives from :class:`RobocellError`; the CLI turns
these into a one-paragraph message and exit code 2.  Messages say what was
wrong (field, value, limit) and what to do about it.
"""

from __future__ import annotations


class RobocellError(Exception):
    """Base class of every error robocell raises on purpose."""


class CellFileError(RobocellError):
    """The cell file is missing, malformed, or fails validation."""


class ConfigError(RobocellError):
    """A name, argument or option given by the user does not exist or is invalid."""


class KinematicsError(RobocellError):
    """Inverse kinematics or path generation failed."""


class UnreachableError(KinematicsError):
    """No verified IK solution exists for a target within the joint limits."""


class SafetyViolation(RobocellError):
    """A target or trajectory leaves the safety envelope; nothing was moved."""


class MotionError(RobocellError):
    """A motion did not finish where it was asked to."""


class TrackingError(MotionError):
    """The arm ended farther from its target than the tolerance."""


class MotionCancelled(MotionError):
    """A motion was cancelled or stopped before it finished."""


class SkillError(RobocellError):
    """A skill is unknown or was called with invalid parameters."""


class SkillFailed(SkillError):
    """A skill's precondition did not hold or its promised effect was not reached."""


class ProgramError(RobocellError):
    """A program file is malformed or does not validate against the cell."""


class BackendError(RobocellError):
    """A backend name is unknown or the backend could not be started."""


class RemoteError(RobocellError):
    """The arm server refused a command or could not be reached."""


class ConnectionLost(RemoteError):
    """No answer from the arm server within the call's deadline; nothing was resent."""


class ProtocolError(RemoteError):
    """A message broke the wire protocol (version, type, size, field); nothing was changed."""


class LeaseError(RemoteError):
    """Another client holds the arm's control lease (or this client's lease was lost)."""


class ProtectiveStop(SafetyViolation, MotionError):
    """The arm is latched in a protective stop (watchdog, fault, stop); reset it to move again."""


class LanguageError(RobocellError):
    """A prompt could not be turned into a program without guessing (unknown, ambiguous or missing parts)."""


class PreviewFailed(SkillFailed):
    """The simulated preview of a taught program failed; nothing was saved or run on hardware."""


class ApprovalRequired(RobocellError):
    """Running on a remote arm needs a passed preview and an explicit approval (--yes or a confirmation)."""


class EvaluationError(RobocellError):
    """An evaluation run could not go on (workers fail to start, the Ray cluster is unreachable)."""


class DemoError(RobocellError):
    """A demonstration file is empty, corrupt, or does not fit the cell, the arm or the task being learned."""


class OutputError(ConfigError):
    """An output path cannot be written (missing or read-only folder) or would replace a file without --force."""


class ServerFailure(RobocellError):
    """A thread of the arm server died; the arm was stopped and the server must be restarted."""


class ContractViolation(RobocellError, AssertionError):
    """A backend, arm or gripper broke a promise of the core contracts (:func:`robocell.testing.check_backend`).

    Also an ``AssertionError``, so that pytest reports it as a failed check, not as a crash.
    ``method`` is the contract method that broke its promise, ``expected`` the promise and
    ``actual`` what happened instead.
    """

    def __init__(self, method: str, expected: str, actual: str) -> None:
        super().__init__(f"{method}: expected {expected}; got {actual}")
        self.method = method
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[type[ContractViolation], tuple[str, str, str]]:
        # pickled with its three fields (a check run in a worker process reports back whole)
        return type(self), (self.method, self.expected, self.actual)
