"""Forward and inverse kinematics of one arm, from the URDF the simulator loads.

The arm's URDF (:meth:`ArmModel.resolved_urdf`) is parsed once per
:class:`Kinematics` instance with roboticstoolbox; FK uses the chain from the
model's base link to its TCP link, IK uses roboticstoolbox's compiled
Levenberg-Marquardt solver on the same chain.  Every IK answer is verified
here by FK and by the joint limits in force before it is returned: the solver's
own convergence flag is never trusted on its own.

All poses are in the arm's base frame (``model.base_link``), SI units.
"""

from __future__ import annotations

import copy
import math
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from spatialmath import SE3

from robocell.errors import ConfigError, KinematicsError, UnreachableError

if TYPE_CHECKING:
    from robocell.models import ArmModel

# LM iterations per start.  Most targets converge in <15 from a sensible seed;
# a start that has not converged by 60 is usually in the wrong basin, and a
# fresh start is cheaper than iterating on.
_ILIMIT = 60
# Number of perturbed-seed starts tried before uniform random starts: they find
# solutions in the seed's configuration family (no elbow/wrist flips).
_N_PERTURBED = 6
# Once a retry has found one verified solution, try this many more starts and
# keep the one closest to the seed, so consecutive calls don't flip branches.
_EXTRA_AFTER_FIRST = 3


def _rot_angle(r: np.ndarray) -> float:
    """Rotation angle of a 3x3 rotation matrix, accurate near 0 and near pi."""
    v = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return math.atan2(float(np.linalg.norm(v)), float(np.trace(r)) - 1.0)


def _pose_error_mat(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    pos = float(np.linalg.norm(a[:3, 3] - b[:3, 3]))
    return pos, _rot_angle(a[:3, :3].T @ b[:3, :3])


def _urdf_joints(path: Path) -> dict[str, tuple[str, str, float, float]]:
    """name -> (type, child link, lower, upper) straight from the URDF XML.

    The URDF is the source of truth for limits; parsing it ourselves also gives
    the joint->link mapping without relying on roboticstoolbox internals.
    """
    root = ET.parse(path).getroot()
    out: dict[str, tuple[str, str, float, float]] = {}
    for j in root.iter("joint"):
        jtype = j.get("type", "")
        child = j.find("child")
        lim = j.find("limit")
        lo, hi = -math.inf, math.inf
        if jtype != "continuous" and lim is not None:
            lo = float(lim.get("lower", "-inf"))
            hi = float(lim.get("upper", "inf"))
        out[j.get("name", "")] = (jtype, child.get("link", "") if child is not None else "", lo, hi)
    return out


def _fmt_pose(t: np.ndarray) -> str:
    xyz = np.round(t[:3, 3], 4).tolist()
    rpy = np.round(SE3(t, check=False).rpy(), 3).tolist()
    return f"xyz={xyz} m, rpy={rpy} rad"


class Kinematics:
    """Forward and inverse kinematics of one arm from its URDF (roboticstoolbox).

    Build with :meth:`from_model`.  ``lower``/``upper`` are the joint limits in
    force (the URDF's, or the cell's tighter safety envelope); ``urdf_lower`` /
    ``urdf_upper`` are the raw URDF limits.  All arrays are read-only.
    """

    def __init__(
        self,
        model: ArmModel,
        lower: ArrayLike | None = None,
        upper: ArrayLike | None = None,
    ) -> None:
        self.model = model
        self.joint_names: tuple[str, ...] = tuple(model.joint_names)
        self.n: int = len(self.joint_names)
        self.urdf_path: Path = model.resolved_urdf()

        joints = _urdf_joints(self.urdf_path)
        child_of: dict[str, str] = {}
        ulo, uhi = np.empty(self.n), np.empty(self.n)
        for i, name in enumerate(self.joint_names):
            if name not in joints:
                raise ConfigError(
                    f"arm model '{model.name}': joint '{name}' is not in {self.urdf_path}; "
                    f"the URDF has joints {sorted(joints)}"
                )
            jtype, child, lo, hi = joints[name]
            if jtype not in ("revolute", "continuous", "prismatic"):
                raise ConfigError(
                    f"arm model '{model.name}': joint '{name}' is '{jtype}', not a moving joint; "
                    "list only revolute/prismatic joints in 'joints'"
                )
            child_of[name] = child
            ulo[i], uhi[i] = lo, hi
        self.urdf_lower = _readonly(ulo)
        self.urdf_upper = _readonly(uhi)
        self.lower, self.upper = self._tightened(lower, upper)

        self._robot = self._load_robot()
        link_names = {link.name for link in self._robot.links}
        for link in (model.base_link, model.tcp_link):
            if link not in link_names:
                raise ConfigError(
                    f"arm model '{model.name}': link '{link}' is not in {self.urdf_path}; "
                    f"links are {sorted(link_names)}"
                )
        # robot-wide jindex of each model joint, to reorder chain coordinates
        self._pos_of_jindex = {
            self._robot.link_dict[child_of[name]].jindex: i
            for i, name in enumerate(self.joint_names)
        }
        self._link_chains: dict[str, tuple[Any, np.ndarray]] = {}
        ets, idx = self._chain(model.tcp_link)
        if sorted(idx.tolist()) != list(range(self.n)):
            raise ConfigError(
                f"arm model '{model.name}': the chain {model.base_link} -> {model.tcp_link} "
                f"moves {ets.n} joints, not exactly {list(self.joint_names)}"
            )
        # Private copy: ETS elements are shared with the parsed robot, and the
        # solver must see the limits in force, not the URDF's.
        self._ets = copy.deepcopy(ets)
        self._ets.qlim = np.vstack([self.lower[idx], self.upper[idx]])
        self._idx = idx  # chain position k holds model joint idx[k]
        self._identity_order = bool(np.array_equal(idx, np.arange(self.n)))
        self._mid = _readonly(0.5 * (self._finite(self.lower, -np.pi) + self._finite(self.upper, np.pi)))

    # ------------------------------------------------------------------ build
    @classmethod
    def from_model(
        cls,
        model: ArmModel,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> Kinematics:
        """Parse ``model.resolved_urdf()``; optional tighter joint limits (rad or m).

        Raises :class:`ConfigError` when a tightened limit lies outside the
        URDF's range or ``lower > upper``.
        """
        return cls(model, lower, upper)

    def _tightened(self, lower: ArrayLike | None, upper: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
        lo = self.urdf_lower.copy() if lower is None else np.asarray(lower, dtype=float).copy()
        hi = self.urdf_upper.copy() if upper is None else np.asarray(upper, dtype=float).copy()
        for arr, which in ((lo, "lower"), (hi, "upper")):
            if arr.shape != (self.n,):
                raise ConfigError(
                    f"{which} joint limits have shape {arr.shape}; give {self.n} values, "
                    f"one per joint {list(self.joint_names)}"
                )
        eps = 1e-9
        for i, name in enumerate(self.joint_names):
            ul, uh = self.urdf_lower[i], self.urdf_upper[i]
            for val, which in ((lo[i], "lower"), (hi[i], "upper")):
                if math.isnan(val) or not (ul - eps <= val <= uh + eps):
                    raise ConfigError(
                        f"{which} limit of joint {name} = {val:.4f} lies outside its URDF range "
                        f"[{ul:.4f}, {uh:.4f}]; the safety envelope may only tighten the URDF limits"
                    )
            if lo[i] > hi[i]:
                raise ConfigError(
                    f"joint {name}: lower limit {lo[i]:.4f} is above upper limit {hi[i]:.4f}; swap them"
                )
        return _readonly(np.clip(lo, self.urdf_lower, self.urdf_upper)), _readonly(
            np.clip(hi, self.urdf_lower, self.urdf_upper)
        )

    def _load_robot(self) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import roboticstoolbox as rtb
            from roboticstoolbox.models.URDF import URDFRobot

            try:
                elinks, name, *_ = URDFRobot.URDF_file(str(self.urdf_path))
                return rtb.Robot(elinks, name=name)
            except Exception as exc:  # parser errors come in many types
                raise ConfigError(
                    f"arm model '{self.model.name}': roboticstoolbox could not parse {self.urdf_path}: {exc}"
                ) from exc

    def _chain(self, link: str) -> tuple[Any, np.ndarray]:
        """ETS base->link and, per chain joint, its position in model order."""
        hit = self._link_chains.get(link)
        if hit is not None:
            return hit
        if link not in self._robot.link_dict:
            raise ConfigError(
                f"unknown link '{link}' of arm '{self.model.name}'; "
                f"links are {sorted(self._robot.link_dict)}"
            )
        try:
            ets = self._robot.ets(start=self.model.base_link, end=link)
        except Exception as exc:
            raise ConfigError(
                f"link '{link}' is not downstream of base link '{self.model.base_link}': {exc}"
            ) from exc
        idx = []
        for j in np.asarray(ets.jindices, dtype=int).tolist() if ets.n else []:
            if j not in self._pos_of_jindex:
                raise ConfigError(
                    f"link '{link}' moves with a joint that is not one of the arm joints "
                    f"{list(self.joint_names)} (e.g. a finger); fk_link covers arm links only"
                )
            idx.append(self._pos_of_jindex[j])
        out = (ets, np.asarray(idx, dtype=int))
        self._link_chains[link] = out
        return out

    @staticmethod
    def _finite(a: np.ndarray, fill: float) -> np.ndarray:
        return np.where(np.isfinite(a), a, fill)

    # ------------------------------------------------------------------ checks
    def _as_q(self, q: ArrayLike, what: str = "q") -> np.ndarray:
        arr = np.asarray(q, dtype=float).reshape(-1)
        if arr.shape != (self.n,):
            raise KinematicsError(
                f"{what} has {arr.size} values; give {self.n}, one per joint {list(self.joint_names)}"
            )
        if not np.all(np.isfinite(arr)):
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise KinematicsError(f"{what}: joint {self.joint_names[i]} = {arr[i]} is not finite")
        return arr

    def within_limits(self, q: ArrayLike, tol: float = 1e-9) -> bool:
        """True when every joint is inside ``[lower - tol, upper + tol]``."""
        arr = np.asarray(q, dtype=float).reshape(-1)
        return bool(
            arr.shape == (self.n,)
            and np.all(arr >= self.lower - tol)
            and np.all(arr <= self.upper + tol)
        )

    # ------------------------------------------------------------------ FK
    def _fk_mat(self, q: np.ndarray) -> np.ndarray:
        qc = q if self._identity_order else q[self._idx]
        return self._ets.eval(qc)

    def fk(self, q: ArrayLike) -> SE3:
        """TCP (``model.tcp_link``) pose in the arm base frame."""
        return SE3(self._fk_mat(self._as_q(q)), check=False)

    def fk_link(self, q: ArrayLike, link: str) -> SE3:
        """Pose of any arm link (URDF link frame) in the arm base frame."""
        qa = self._as_q(q)
        ets, idx = self._chain(link)
        if ets.n == 0:
            return SE3(ets.eval([]), check=False) if len(ets) else SE3()
        return SE3(ets.eval(qa[idx]), check=False)

    @staticmethod
    def pose_error(a: SE3, b: SE3) -> tuple[float, float]:
        """(position error in m, rotation angle error in rad) between two poses."""
        return _pose_error_mat(np.asarray(a.A), np.asarray(b.A))

    # ------------------------------------------------------------------ IK
    def _target_mat(self, target: SE3 | np.ndarray) -> np.ndarray:
        t = np.asarray(target.A if isinstance(target, SE3) else target, dtype=float)
        if t.shape != (4, 4):
            raise KinematicsError(f"IK target must be one SE3 pose (4x4), got shape {t.shape}")
        if not np.all(np.isfinite(t)):
            bad = t[~np.isfinite(t)][0]
            raise KinematicsError(
                f"IK target contains a non-finite value ({bad}); check the pose you computed"
            )
        return t

    def ik(
        self,
        target: SE3,
        q_seed: ArrayLike | None = None,
        *,
        rng: np.random.Generator | None = None,
        max_attempts: int = 30,
        pos_tol: float = 1e-3,
        rot_tol: float = 1e-2,
    ) -> np.ndarray:
        """Joint vector (model joint order) whose TCP pose is ``target`` (base frame).

        Starts the compiled LM solver at ``q_seed`` (default: middle of the
        limits), then, if needed, from small perturbations of the seed and
        finally from uniform random configurations drawn from ``rng`` (default
        ``np.random.default_rng(0)``, so results are reproducible).  A result is
        accepted only if FK puts the TCP within ``pos_tol`` m and ``rot_tol``
        rad of the target and every joint lies inside ``[lower, upper]``.

        Raises :class:`UnreachableError` (with the best residual reached) when
        no start gives a verified solution, and :class:`KinematicsError` for a
        non-finite target or seed.
        """
        tep = self._target_mat(target)
        seed = self._mid.copy() if q_seed is None else self._as_q(q_seed, "q_seed")
        start = np.clip(seed, self.lower, self.upper)
        # The solver's tolerance is on 0.5*|e|^2 (e = [dp; dtheta]); ask for 10x
        # tighter than the verification so converged answers pass it.
        tol = 0.5 * (0.1 * min(pos_tol, rot_tol)) ** 2
        lo, hi = self._finite(self.lower, -np.pi), self._finite(self.upper, np.pi)
        span = hi - lo
        weights = 1.0 / np.maximum(span, 1e-6)

        found: list[np.ndarray] = []
        first_found_at = -1
        best = (math.inf, math.inf)
        limit_note = ""
        for attempt in range(max(1, max_attempts)):
            if attempt == 0:
                q0 = start
            else:
                if rng is None:
                    rng = np.random.default_rng(0)
                if attempt <= _N_PERTURBED:
                    sigma = 0.03 * attempt  # widen the search gradually
                    q0 = np.clip(start + rng.normal(0.0, sigma, self.n) * span, lo, hi)
                else:
                    q0 = rng.uniform(lo, hi)
            # joint_limits=False with slimit=1: on a limit violation the solver
            # would replace q by a random vector; we check limits ourselves and
            # keep the information (which joint, by how much).
            sol = self._ets.ik_LM(
                tep,
                q0=q0 if self._identity_order else q0[self._idx],
                ilimit=_ILIMIT,
                slimit=1,
                tol=tol,
                joint_limits=False,
            )
            qc = np.asarray(sol.q, dtype=float)
            q = qc if self._identity_order else _unpermute(qc, self._idx)
            if not np.all(np.isfinite(q)):
                continue
            inside = bool(np.all(q >= self.lower - 1e-9) and np.all(q <= self.upper + 1e-9))
            qv = q if inside else np.clip(q, self.lower, self.upper)
            pe, re = _pose_error_mat(self._fk_mat(qv), tep)
            if inside and pe <= pos_tol and re <= rot_tol:
                if attempt == 0:
                    return qv  # continuous with the seed: the common fast path
                found.append(qv)
                if first_found_at < 0:
                    first_found_at = attempt
            else:
                if pe + re < best[0] + best[1]:
                    best = (pe, re)
                if not inside and not limit_note:
                    pe_raw, re_raw = _pose_error_mat(self._fk_mat(q), tep)
                    if pe_raw <= pos_tol and re_raw <= rot_tol:
                        i = int(np.argmax(np.maximum(self.lower - q, q - self.upper)))
                        limit_note = (
                            f"; a solution exists only outside the joint limits "
                            f"({self.joint_names[i]} = {q[i]:.3f}, limits "
                            f"[{self.lower[i]:.3f}, {self.upper[i]:.3f}])"
                        )
            if found and attempt - first_found_at >= _EXTRA_AFTER_FIRST:
                break
        if found:
            dist = [float(np.sum((weights * (f - seed)) ** 2)) for f in found]
            return found[int(np.argmin(dist))]
        raise UnreachableError(
            f"no IK solution within the joint limits for target {_fmt_pose(tep)} "
            f"after {max(1, max_attempts)} starts; best residual {best[0] * 1e3:.1f} mm, "
            f"{best[1]:.3f} rad (tolerance {pos_tol * 1e3:.1f} mm, {rot_tol:.3f} rad){limit_note}. "
            "Move the target closer to the arm base, check its orientation, or widen the joint limits."
        )


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _unpermute(qc: np.ndarray, idx: np.ndarray) -> np.ndarray:
    q = np.empty_like(qc)
    q[idx] = qc
    return q
