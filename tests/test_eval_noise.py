"""Sensor noise wraps a backend without changing which optional capabilities it has."""

from __future__ import annotations

from pathlib import Path

from robocell.cellfile.randomization import SensorNoiseSpec, TrialConditions
from robocell.core.capabilities import Renders, Samples, SimClock, sim_time
from robocell.core.cell import Cell
from robocell.eval.noise import NoisyBackend, with_noise

TABLETOP = Path(__file__).resolve().parents[1] / "examples" / "cells" / "tabletop.yaml"
NOISY = TrialConditions(noise=SensorNoiseSpec(object_position=0.002), noise_seed=3)


class _Plain:
    """A backend with the required methods only (no rendering, sampling or simulated clock)."""

    arms: dict[str, object] = {}
    grippers: dict[str, object] = {}


def test_a_noisy_simulator_still_renders_samples_and_keeps_simulated_time() -> None:
    with Cell.load(TABLETOP, "sim") as cell:
        noisy = with_noise(cell.backend, NOISY)
        assert isinstance(noisy, NoisyBackend)
        assert isinstance(noisy, Renders) and isinstance(noisy, Samples) and isinstance(noisy, SimClock)
        assert sim_time(noisy) == sim_time(cell.backend) > 0.0


def test_a_noisy_backend_gains_no_capability_the_wrapped_one_lacks() -> None:
    noisy = with_noise(_Plain(), NOISY)  # type: ignore[arg-type]
    assert not isinstance(noisy, Renders) and not isinstance(noisy, Samples) and not isinstance(noisy, SimClock)
    assert sim_time(noisy) == 0.0
