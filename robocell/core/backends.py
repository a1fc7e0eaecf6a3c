"""Backends are chosen by name: ``sim`` or an address such as ``tcp://host:port``.

The core never imports a backend at module import time; a backend is a
``module:function`` factory resolved when a cell is loaded.  Third-party
backends register themselves with the ``robocell.core.backends`` entry-point
group (name = URL scheme), so adding one needs no edit here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from robocell.core import plugins
from robocell.errors import BackendError

if TYPE_CHECKING:
    from spatialmath import SE3

    from robocell.core.arm import Arm, Gripper
    from robocell.cellfile.spec import CellSpec

# scheme -> "module:factory"; the factory is called as factory(spec, address, **options)
BUILTIN_BACKENDS: Mapping[str, str] = {
    "sim": "robocell.sim.backend:create",
    "tcp": "robocell.hardware.remote:create",
    "ipc": "robocell.hardware.remote:create",
}


@runtime_checkable
class Backend(Protocol):
    """What a running cell needs from a backend (simulator or hardware).

    Runtime-checkable (attributes and methods present, not their types), so that
    :func:`robocell.testing.check_backend` can tell a backend from a cell factory.
    """

    arms: Mapping[str, Arm]
    grippers: Mapping[str, Gripper]

    def object_pose(self, name: str) -> SE3:
        """World pose of an object (physics in simulation, perception or cell file on hardware)."""
        ...

    def held_object(self, arm: str) -> str | None:
        """Name of the object the arm's gripper holds, if the backend can tell, else None."""
        ...

    def wait(self, seconds: float) -> None:
        """Let time pass (the arms hold still)."""
        ...

    def close(self) -> None:
        ...

    # Optional capabilities (Protocols in robocell.core.capabilities: Renders, Samples, SimClock; a backend without
    # them simply lacks the feature):
    #
    # open_sampler(arm: str, rate: float, on_sample: SampleSink) -> Sampler
    #     Start sampling arm ``arm`` at ``rate`` Hz or faster for robocell.recording.recorder.
    #     ``on_sample(t, q, tcp, width, grasped)`` gets the backend's timestamp t (s,
    #     its own clock: simulated time, or the server's), joint positions q (rad,
    #     a sequence), the TCP pose as 16 floats of the 4x4 world pose (row-major),
    #     the gripper width (m) and whether it holds something.  Calls come from one
    #     thread at a time (the stepping thread in simulation, a sampler thread for a
    #     remote arm) and must return quickly.  ``Sampler.rate`` is the rate samples
    #     actually come at; ``Sampler.close()`` stops sampling (no call after it
    #     returns) and raises the error that stopped sampling early, if any.


def _scheme(address: str) -> str:
    return address.split("://", 1)[0] if "://" in address else address


def available_backends() -> dict[str, str]:
    return plugins.available("robocell.backends", BUILTIN_BACKENDS)


def create_backend(spec: CellSpec, address: str, **options: Any) -> Backend:
    """Start the backend named by ``address`` for a validated cell."""
    known = available_backends()
    scheme = _scheme(address)
    if scheme not in known:
        raise BackendError(
            f"unknown backend '{address}'; available backends: {', '.join(sorted(known))}"
            " (a remote arm is addressed as tcp://host:port)"
        )
    factory = plugins.load(known[scheme])
    backend: Backend = factory(spec, address, **options)
    return backend
