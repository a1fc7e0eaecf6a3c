"""Sensor noise for evaluation trials: a backend wrapper whose readings come with Gaussian noise.

The cell file declares the noise (``randomization: sensor_noise:``, :class:`robocell.cellfile.randomization.
SensorNoiseSpec`); each trial draws its own stream (:class:`~robocell.cellfile.randomization.TrialConditions`).
Wrapping a running backend is evaluation's business, not the cell file's: the schema stays below the contracts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from spatialmath import SE3

if TYPE_CHECKING:
    from robocell.cellfile.randomization import SensorNoiseSpec, TrialConditions
    from robocell.core.arm import ArmState
    from robocell.core.backends import Backend


class NoisyArm:
    """An arm whose ``state()`` reports joint angles with noise; motions go to the real arm.

    The controller underneath keeps its exact feedback, as a drive's encoder
    loop does; what a program reads (and plans from) is perturbed.
    """

    def __init__(self, arm: Any, sigma: float, rng: np.random.Generator) -> None:
        self._arm = arm
        self._sigma = sigma
        self._rng = rng

    def state(self) -> ArmState:
        import dataclasses

        s = self._arm.state()
        q = s.q + self._rng.normal(0.0, self._sigma, size=np.shape(s.q))
        return dataclasses.replace(s, q=q)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._arm, name)


class NoisyBackend:
    """Wraps a backend so object poses and joint readings come with Gaussian noise."""

    def __init__(self, backend: Backend, noise: SensorNoiseSpec, seed: int) -> None:
        self._backend = backend
        self._noise = noise
        self._rng = np.random.default_rng(seed)
        self.arms = {n: (NoisyArm(a, noise.joint_position, self._rng) if noise.joint_position > 0 else a)
                     for n, a in backend.arms.items()}
        self.grippers = backend.grippers

    def object_pose(self, name: str) -> SE3:
        T = self._backend.object_pose(name)
        n = self._noise
        if n.object_position == 0 and n.object_yaw == 0:
            return T
        dp = self._rng.normal(0.0, n.object_position, size=3) if n.object_position > 0 else np.zeros(3)
        dyaw = float(self._rng.normal(0.0, n.object_yaw)) if n.object_yaw > 0 else 0.0
        return SE3.Trans(dp) * T * SE3.Rz(dyaw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def with_noise(backend: Backend, cond: TrialConditions) -> Backend:
    n = cond.noise
    if n.object_position == 0 and n.object_yaw == 0 and n.joint_position == 0:
        return backend
    return _wrapper_class(backend)(backend, n, cond.noise_seed)  # type: ignore[return-value]


# ---- the wrapped backend's optional capabilities ------------------------------------------------------------
# A runtime-checkable Protocol looks a capability up on the object's class (Python >= 3.12 uses
# inspect.getattr_static), not through NoisyBackend.__getattr__: so the wrapper's class carries exactly the
# capabilities of the backend it wraps, no more (a noisy remote arm still cannot render) and no fewer.
class _Renders:
    _backend: Any

    def render(self, camera: str | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
        image: np.ndarray = self._backend.render(camera, size)
        return image


class _Samples:
    _backend: Any

    def open_sampler(self, arm: str, rate: float, on_sample: Any) -> Any:
        return self._backend.open_sampler(arm, rate, on_sample)


class _SimClock:
    _backend: Any

    @property
    def sim_time(self) -> float:
        return float(self._backend.sim_time)


_WRAPPERS: dict[tuple[type, ...], type[NoisyBackend]] = {}


def _wrapper_class(backend: Backend) -> type[NoisyBackend]:
    from robocell.core.capabilities import Renders, Samples, SimClock

    mixins = tuple(m for cap, m in ((Renders, _Renders), (Samples, _Samples), (SimClock, _SimClock))
                   if isinstance(backend, cap))
    if not mixins:
        return NoisyBackend
    if mixins not in _WRAPPERS:
        _WRAPPERS[mixins] = type("NoisyBackend", (*mixins, NoisyBackend), {"__doc__": NoisyBackend.__doc__})
    return _WRAPPERS[mixins]
