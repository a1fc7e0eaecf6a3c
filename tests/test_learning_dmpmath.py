"""The vectorised imitation and the exact position rollout against ``movement_primitives`` itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robocell.skills.learning import dmpmath
from robocell.skills.learning.primitive import align_quaternions


def _curved_path(n: int = 160, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A lifted, curved, uneven pose path with a 100 deg wrist turn and tremor: a demonstration's shape."""
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, n)
    warp = s + 0.08 * np.sin(2 * np.pi * s)  # uneven speed
    pos = np.column_stack([0.4 * warp, 0.1 * np.sin(np.pi * warp), 0.15 * np.sin(np.pi * warp) ** 2])
    pos += rng.normal(0.0, 3e-4, pos.shape)
    rot = Rotation.from_euler("zyx", np.column_stack([1.75 * warp, 0.2 * np.sin(np.pi * s), 0.1 * s]))
    xyzw = rot.as_quat()
    pq = np.column_stack([pos, xyzw[:, 3], xyzw[:, :3]])
    return np.linspace(0.0, 4.0, n), align_quaternions(pq)


def test_target_forces_and_weights_equal_the_librarys() -> None:
    from movement_primitives.dmp import CartesianDMP
    from movement_primitives.dmp._cartesian_dmp import determine_forces_quaternion
    from movement_primitives.dmp._dmp import determine_forces

    t, pq = _curved_path()
    a, b = np.full(3, 25.0), np.full(3, 6.25)
    ref_p = determine_forces(t, pq[:, :3], a, b, 1.0, False)[0]
    ref_q = determine_forces_quaternion(t, pq[:, 3:], a, b, 1.0, False)[0]
    np.testing.assert_allclose(dmpmath.position_forces(t, pq[:, :3], a, b), ref_p, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dmpmath.quaternion_forces(t, pq[:, 3:], a, b), ref_q, rtol=1e-9, atol=1e-9)

    lib = CartesianDMP(execution_time=4.0, dt=float(t[1] - t[0]), n_weights_per_dim=40)
    lib.imitate(t, pq)
    ours = CartesianDMP(execution_time=4.0, dt=float(t[1] - t[0]), n_weights_per_dim=40)
    dmpmath.imitate_cartesian(ours, t, pq)
    np.testing.assert_allclose(ours.get_weights(), lib.get_weights(), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(ours.start_y, lib.start_y)
    np.testing.assert_allclose(ours.goal_y, lib.goal_y)


@pytest.mark.parametrize("shift", [np.zeros(3), np.array([0.1, -0.08, 0.02])])
def test_exact_position_rollout_matches_the_librarys_fine_integration(shift: np.ndarray) -> None:
    from movement_primitives.dmp import DMP

    t, pq = _curved_path()
    fine = DMP(n_dims=3, execution_time=4.0, dt=1e-4, int_dt=1e-4, n_weights_per_dim=40)
    fine.imitate(t, pq[:, :3])
    start, goal = pq[0, :3] + shift, pq[-1, :3] - shift
    fine.configure(start_y=start, goal_y=goal)
    y_ref = fine.open_loop()[1][::100]  # the library's RK4 at 0.1 ms steps: the model's path, every 10 ms
    t = np.arange(len(y_ref)) * 0.01
    y = dmpmath.rollout_position(fine.forcing_term, 25.0, 6.25, 4.0, start, goal, t)
    assert np.abs(y - y_ref).max() < 2e-5  # 0.02 mm
    # the library's own 10 ms rollout lags the model by a step: the reason for the exact one
    coarse = DMP(n_dims=3, execution_time=4.0, dt=0.01, int_dt=0.01, n_weights_per_dim=40)
    coarse.set_weights(fine.get_weights())
    coarse.configure(start_y=start, goal_y=goal)
    assert np.abs(coarse.open_loop()[1][:len(y_ref)] - y_ref).max() > 5e-4
