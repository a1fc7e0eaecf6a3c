"""Optional capabilities of a backend, as runtime-checkable Protocols.

A backend implements :class:`robocell.core.backends.Backend`; some can do more. Code that needs more asks with
``isinstance(backend, Renders)`` (or the helpers below), never by probing attributes of a particular backend's
internals (``backend.world.time``): a third-party backend gets a feature by implementing the method, and a backend
without it simply lacks the feature.

- :class:`Renders`: pictures of the cell (``robocell run --picture``, previews, eval failure shots);
- :class:`Samples`: sampling an arm's state at a fixed rate (``robocell record``, :mod:`robocell.recording`);
- :class:`SimClock`: a simulated clock (the simulated time a run or a trial took).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from robocell.recording.recorder import SampleSink, Sampler


@runtime_checkable
class Renders(Protocol):
    def render(self, camera: str | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
        """An RGB image (height x width x 3, uint8) from the named camera (None: the cell's first)."""
        ...


@runtime_checkable
class Samples(Protocol):
    def open_sampler(self, arm: str, rate: float, on_sample: SampleSink) -> Sampler:
        """Start sampling arm ``arm`` at ``rate`` Hz or faster (see the contract in robocell.core.backends)."""
        ...


@runtime_checkable
class SimClock(Protocol):
    @property
    def sim_time(self) -> float:
        """Simulated seconds since the backend started."""
        ...


def sim_time(backend: object) -> float:
    """The backend's simulated time in s, 0.0 for a backend without a simulated clock (real time only)."""
    return float(backend.sim_time) if isinstance(backend, SimClock) else 0.0
