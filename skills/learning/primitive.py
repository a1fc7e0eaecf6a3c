"""Movement primitives for TCP pose paths, fitted and rolled out with ``movement_primitives``.

A path is an array of poses ``pq`` (N, 7): position (m) and unit quaternion
``(w, x, y, z)``, expressed in the frame of the thing the segment acts on.

- One demonstration: a Cartesian DMP (position DMP + quaternion DMP).  Its
  forcing term is *not* scaled by the start-goal distance (the formulation
  of Pastor et al. 2009 that the library implements), so the demonstrated
  shape, e.g. a 15 cm lift over a wall, is kept in absolute terms when the
  start and goal move.
- Several demonstrations: a ProMP over position and the rotation vector to the
  segment's final orientation (6 coordinates), one weight vector per
  demonstration by ridge regression on the library's basis, and a weight
  covariance = each coordinate's spread over the demonstrations + a prior that lets the
  whole path shift and stretch (offset and linear-blend modes per
  coordinate).  Conditioning on the new start and goal then moves the whole
  path like the demonstrations moved, instead of bending only its ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robocell.skills.learning import dmpmath

ROLLOUT_DT = 0.01  # s between rolled-out waypoints (100 Hz)
DMP_WEIGHTS_PER_SECOND = 15  # basis functions per second of motion, per coordinate (more fit the tremor)
DMP_MIN_WEIGHTS, DMP_MAX_WEIGHTS = 10, 60
FIT_RATE = 30.0  # Hz: demonstrations are resampled to this before fitting (human motion is far slower; the
# library's ridge regression is cubic in the sample count, and fewer samples amplify sensor noise less)
PROMP_WEIGHTS = 30  # basis functions per coordinate (ProMPs work on the normalised phase)
PROMP_PRIOR_SHIFT = 0.05  # m (and quaternion units): std dev of the whole-path shift the prior allows
PROMP_PRIOR_LOCAL = 0.002  # std dev of independent per-weight changes (local bending)
PROMP_CONDITION_STD = 1e-4  # how tightly the start and goal are imposed


def align_quaternions(pq: np.ndarray) -> np.ndarray:
    """Flip quaternion signs so consecutive ones lie in the same hemisphere (q and -q are one rotation)."""
    out = np.array(pq, dtype=float, copy=True)
    q = out[:, 3:]
    flips = np.einsum("ij,ij->i", q[1:], q[:-1]) < 0  # against the raw neighbour
    sign = np.concatenate([[1.0], np.cumprod(np.where(flips, -1.0, 1.0))])
    out[:, 3:] = q * sign[:, None]
    return out


def resample(t: np.ndarray, pq: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n + 1`` poses evenly spaced in time (positions linearly, quaternions by normalised lerp)."""
    ts = np.linspace(float(t[0]), float(t[-1]), n + 1)
    y = np.column_stack([np.interp(ts, t, pq[:, j]) for j in range(7)])
    y[:, 3:] /= np.linalg.norm(y[:, 3:], axis=1, keepdims=True)
    return ts, y


def _xyzw(q_wxyz: np.ndarray) -> np.ndarray:
    return np.array([q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0]])


def to_goal_coordinates(pq: np.ndarray) -> np.ndarray:
    """(N, 6): position, and the rotation vector from the segment's last orientation to each one.

    Conditioning a ProMP on quaternion components blends them linearly, which swings the
    wrist when the new goal is turned far from the shown one; rotation vectors relative to
    the goal are small, vanish at the goal, and blend as rotations.
    """
    from scipy.spatial.transform import Rotation

    q = align_quaternions(pq)[:, 3:]
    R = Rotation.from_quat(q[:, [1, 2, 3, 0]])
    r = (R[-1].inv() * R).as_rotvec()
    return np.column_stack([pq[:, :3], r])


def _near(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return -q if np.dot(q, ref) < 0 else q


def _pin_ends(t: np.ndarray, y: np.ndarray, start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """``y`` moved to start exactly on ``start`` and end exactly on ``goal``.

    A primitive converges to its goal but stops a fraction of a millimetre short; the
    residuals at both ends are spread over the whole path with a smooth (quintic) blend,
    so the path starts where the arm is and ends on the goal without a velocity jump.
    """
    s = ((t - t[0]) / (t[-1] - t[0]))[:, None]
    w = 10 * s**3 - 15 * s**4 + 6 * s**5
    return np.asarray(y + (1 - w) * (start - y[0]) + w * (goal - y[-1]), dtype=float)


@dataclass
class Primitive:
    """One fitted primitive: kind ``dmp`` or ``promp``, its parameters and the segment's timing."""

    kind: str
    duration: float  # s, execution time of the rolled-out segment
    params: dict[str, Any]

    # ---- fitting -------------------------------------------------------------------
    @classmethod
    def fit_dmp(cls, t: np.ndarray, pq: np.ndarray) -> Primitive:
        from movement_primitives.dmp import CartesianDMP

        duration = float(t[-1] - t[0])
        n_w = int(np.clip(round(duration * DMP_WEIGHTS_PER_SECOND), DMP_MIN_WEIGHTS, DMP_MAX_WEIGHTS))
        ts, ys = resample(t - t[0], align_quaternions(pq), max(int(round(duration * FIT_RATE)), 2 * n_w))
        dmp = CartesianDMP(execution_time=duration, dt=float(ts[1] - ts[0]), n_weights_per_dim=n_w)
        dmpmath.imitate_cartesian(dmp, ts, ys)  # = dmp.imitate(ts, ys), without its per-sample loops
        return cls("dmp", duration, {"n_weights_per_dim": n_w, "weights": dmp.get_weights().tolist()})

    @classmethod
    def fit_promp(cls, ts: list[np.ndarray], pqs: list[np.ndarray]) -> Primitive:
        from movement_primitives.promp import ProMP

        promp = ProMP(n_dims=6, n_weights_per_dim=PROMP_WEIGHTS)
        weights = []
        for t, pq in zip(ts, pqs):
            # the ridge regression is over all samples of all 6 coordinates at once: resampled
            # like the DMP's input it costs a tenth, and the 30 basis functions see no difference
            t, pq = resample(t, align_quaternions(pq), max(int(round((t[-1] - t[0]) * FIT_RATE)), 2 * PROMP_WEIGHTS))
            phase = (t - t[0]) / (t[-1] - t[0])
            weights.append(promp.weights(phase, to_goal_coordinates(pq), lmbda=1e-8))
        duration = float(np.mean([t[-1] - t[0] for t in ts]))
        return cls("promp", duration, {"n_weights_per_dim": PROMP_WEIGHTS,
                                       "demo_weights": np.asarray(weights).tolist()})

    # ---- rolling out ------------------------------------------------------------------
    def rollout(self, start: np.ndarray, goal: np.ndarray, dt: float = ROLLOUT_DT) -> tuple[np.ndarray, np.ndarray]:
        """Times (s) and poses pq (N, 7) from ``start`` to ``goal`` (exactly), in the segment's frame."""
        if self.kind == "dmp":
            t, y = self._rollout_dmp(start, goal, dt)
        else:
            t, y = self._rollout_promp(start, goal, dt)
        y = align_quaternions(y)
        s0 = np.concatenate([start[:3], _near(np.asarray(start[3:], dtype=float), y[0, 3:])])
        g = np.concatenate([goal[:3], _near(np.asarray(goal[3:], dtype=float), y[-1, 3:])])
        y = _pin_ends(t, y, s0, g)
        y[:, 3:] /= np.linalg.norm(y[:, 3:], axis=1, keepdims=True)
        return t, y

    def rollout_positions(self, start: np.ndarray, goal: np.ndarray, dt: float = ROLLOUT_DT) -> tuple[np.ndarray, np.ndarray]:
        """Times and TCP positions only (N, 3): what the reproduction check compares."""
        if self.kind != "dmp":
            t, y = self.rollout(start, goal, dt)
            return t, y[:, :3]
        t, y = self._dmp_positions(np.asarray(start[:3], dtype=float), np.asarray(goal[:3], dtype=float), dt)
        return t, _pin_ends(t, y, np.asarray(start[:3], dtype=float), np.asarray(goal[:3], dtype=float))

    def _dmp_positions(self, start: np.ndarray, goal: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """The position half of the Cartesian DMP (the first half of its weights), integrated exactly."""
        from movement_primitives.dmp import DMP

        n_w = int(self.params["n_weights_per_dim"])
        dmp = DMP(n_dims=3, execution_time=self.duration, dt=dt, n_weights_per_dim=n_w)
        dmp.set_weights(np.asarray(self.params["weights"], dtype=float)[:3 * n_w])
        t = np.arange(0.0, self.duration + dt, dt)  # the library's open-loop time grid
        a, b = float(dmp.alpha_y[0]), float(dmp.beta_y[0])
        return t, dmpmath.rollout_position(dmp.forcing_term, a, b, self.duration, start, goal, t)

    def _rollout_dmp(self, start: np.ndarray, goal: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        from movement_primitives.dmp import CartesianDMP
        from movement_primitives.dmp._cartesian_dmp import dmp_open_loop_quaternion

        dmp = CartesianDMP(execution_time=self.duration, dt=dt, int_dt=dt,
                           n_weights_per_dim=int(self.params["n_weights_per_dim"]))
        dmp.set_weights(np.asarray(self.params["weights"], dtype=float))
        start = np.asarray(start, dtype=float)
        goal = np.concatenate([goal[:3], _near(np.asarray(goal[3:], dtype=float), start[3:])])
        t, pos = self._dmp_positions(start[:3], goal[:3], dt)
        # orientation: the library's quaternion integrator; int_dt = dt (its 1 ms default costs
        # 6x the time) lags a 100 deg/4 s wrist turn by 7 mrad, well inside the IK's reach
        _, rot = dmp_open_loop_quaternion(self.duration, 0.0, dt, start[3:], goal[3:], dmp.alpha_y[3:],
                                          dmp.beta_y[3:], dmp.forcing_term_rot, int_dt=dt)
        n = min(len(t), len(rot))
        return t[:n], np.hstack([pos[:n], np.asarray(rot, dtype=float)[:n]])

    def distribution(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the ProMP's weights (demonstrations' spread plus the shift prior)."""
        n_w = int(self.params["n_weights_per_dim"])
        w = np.asarray(self.params["demo_weights"], dtype=float)
        mean = w.mean(axis=0)
        d = w - mean
        cov = d.T @ d / max(len(w) - 1, 1)
        # Keep each coordinate's own spread over time but drop the correlations between coordinates:
        # from a handful of demonstrations they are chance (a turned wrist "predicting" a longer
        # reach), and conditioning on a new goal orientation would then drag the position with it.
        n_dims = w.shape[1] // n_w
        cov *= np.kron(np.eye(n_dims), np.ones((n_w, n_w)))
        ramp = np.linspace(0.0, 1.0, n_w)
        prior_1d = PROMP_PRIOR_SHIFT**2 * (np.outer(1 - ramp, 1 - ramp) + np.outer(ramp, ramp))
        prior_1d += PROMP_PRIOR_LOCAL**2 * np.eye(n_w)
        return mean, cov + np.kron(np.eye(n_dims), prior_1d)

    def demo_positions(self, i: int, phase: np.ndarray) -> np.ndarray:
        """Positions (N, 3) of a ProMP's demonstration ``i`` from its own weights, at ``phase`` in [0, 1].

        How well the basis represents each demonstration: the ProMP's fit error.
        (Its conditioned mean is the demonstrations' average, and lies as far from
        each one as they lie from each other.)
        """
        from movement_primitives.promp import ProMP

        promp = ProMP(n_dims=6, n_weights_per_dim=int(self.params["n_weights_per_dim"]))
        w = np.asarray(self.params["demo_weights"], dtype=float)[i]
        return np.asarray(promp.trajectory_from_weights(phase, w), dtype=float)[:, :3]

    def _rollout_promp(self, start: np.ndarray, goal: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        from movement_primitives.promp import ProMP
        from scipy.spatial.transform import Rotation

        n_w = int(self.params["n_weights_per_dim"])
        promp = ProMP(n_dims=6, n_weights_per_dim=n_w)
        mean, cov = self.distribution()
        promp.from_weight_distribution(mean, cov)
        n = max(int(round(self.duration / dt)), 2)
        phase = np.linspace(0.0, 1.0, n + 1)
        R_goal = Rotation.from_quat(_xyzw(np.asarray(goal[3:], dtype=float)))
        r0 = (R_goal.inv() * Rotation.from_quat(_xyzw(np.asarray(start[3:], dtype=float)))).as_rotvec()
        noise = PROMP_CONDITION_STD**2 * np.eye(6)
        promp = promp.condition_position(np.concatenate([start[:3], r0]), y_cov=noise, t=0.0, t_max=1.0)
        promp = promp.condition_position(np.concatenate([goal[:3], np.zeros(3)]), y_cov=noise, t=1.0, t_max=1.0)
        y = promp.mean_trajectory(phase)
        q = (R_goal * Rotation.from_rotvec(y[:, 3:])).as_quat()
        return phase * self.duration, np.column_stack([y[:, :3], q[:, 3], q[:, :3]])

    # ---- file ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "duration": self.duration, **self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Primitive:
        kind = str(d["kind"])
        params = {k: v for k, v in d.items() if k not in ("kind", "duration")}
        return cls(kind, float(d["duration"]), params)
