"""Forward and inverse kinematics of one arm, from the URDF the simulator loads.

The arm's URDF (:meth:`ArmModel.resolved_urdf`) is parsed once per
:class:`Kinematics` instance with roboticstoolbox; FK uses the chain from the
model's base link to its TCP link, IK uses roboticstoolbox's compiled
Levenberg-Marquardt solver on the same chain (the multi-start search is
:mod:`robocell.motion.ik`).  Every IK answer is verified by FK and by the joint
limits in force before it is returned: the solver's own convergence flag is
never trusted on its own.

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

from robocell.errors import ConfigError, KinematicsError
from robocell.motion.ik import IKSearch, pose_error_mat

if TYPE_CHECKING:
    from robocell.motion.arm_models import ArmModel

# roboticstoolbox memoises these Robot methods with functools.lru_cache on the *class*:
# the cache holds every robot ever asked (and its nanobind ETS objects) until the
# interpreter exits, where nanobind reports each as a "leaked instance".
_CLASS_CACHED = ("ets", "get_path", "_getlink", "_get_limit_links")


def _private_caches(robot: Any) -> Any:
    """``robot`` with its own caches for :data:`_CLASS_CACHED`: they die with the robot."""
    import functools
    import types

    for name in _CLASS_CACHED:
        wrapped = getattr(getattr(type(robot), name, None), "__wrapped__", None)
        if wrapped is not None:  # an instance attribute shadows the class's cached method
            setattr(robot, name, functools.lru_cache(maxsize=32)(types.MethodType(wrapped, robot)))
    return robot


def urdf_joints(path: Path) -> dict[str, tuple[str, str, float, float]]:
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

        joints = urdf_joints(self.urdf_path)
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
        self._tcp_chain = ets
        self._idx = idx  # chain position k holds model joint idx[k]
        self._identity_order = bool(np.array_equal(idx, np.arange(self.n)))
        self._setup_solver(ets)

    def _setup_solver(self, ets: Any) -> None:
        """Solver chain and per-limit constants for the limits in force."""
        # Private copy: ETS elements are shared with the parsed robot, and the
        # solver must see the limits in force, not the URDF's.
        self._ets = copy.deepcopy(ets)
        self._ets.qlim = np.vstack([self.lower[self._idx], self.upper[self._idx]])
        # continuous joints have infinite limits: sample them over one turn
        self._lo_fin = _readonly(self._finite(self.lower, -np.pi))
        self._hi_fin = _readonly(self._finite(self.upper, np.pi))
        self._mid = _readonly(0.5 * (self._lo_fin + self._hi_fin))
        self._fk_chain = self._fast_fk()
        self._search = IKSearch(self._ets, self._idx, self.lower, self.upper, self.joint_names, self._fk_chain,
                                self._lo_fin, self._hi_fin)

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

    def with_limits(self, lower: ArrayLike | None = None, upper: ArrayLike | None = None) -> Kinematics:
        """The same arm with other joint limits (inside the URDF's), without re-parsing."""
        other = copy.copy(self)
        other._link_chains = dict(self._link_chains)
        other.lower, other.upper = self._tightened(lower, upper)
        other._setup_solver(self._tcp_chain)
        return other

    @property
    def base_link(self) -> str:
        """URDF link whose frame all poses are expressed in."""
        return self.model.base_link

    @property
    def tcp_link(self) -> str:
        """URDF link whose pose :meth:`fk` returns and :meth:`ik` solves for."""
        return self.model.tcp_link

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
                return _private_caches(rtb.Robot(elinks, name=name))
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
        return self._fk_chain(q if self._identity_order else q[self._idx])

    def _fast_fk(self) -> Any:
        """Compiled FK of the TCP chain, chain-ordered q -> 4x4 array.

        ``ETS.eval`` rebuilds the joint-index map on every call (~3x the cost
        of the FK itself, and IK verification runs FK on every answer); the
        compiled kernel behind it takes the chain handle directly.  Falls back
        to the public call if a future roboticstoolbox moves these internals.
        """
        ets = self._ets
        try:
            from roboticstoolbox.ets.fknm import ETS_fkine

            handle = ets._fknm
            probe = np.asarray(self._mid)[self._idx]
            if handle is not None and np.allclose(  # same answer as the public call
                ETS_fkine(handle, probe, None, None, True), ets.eval(probe), atol=1e-12
            ):
                # the kernel takes writable C-contiguous float64 only: copy (read-only
                # trajectory rows and F-ordered slices are common inputs)
                return lambda qc: ETS_fkine(handle, np.array(qc, dtype=float), None, None, True)
        except (ImportError, AttributeError, TypeError, ValueError):
            # rtb moved its internals: the public call is slower but equivalent
            return lambda qc: ets.eval(np.array(qc, dtype=float))
        return lambda qc: ets.eval(np.array(qc, dtype=float))

    def fk(self, q: ArrayLike) -> SE3:
        """TCP (``model.tcp_link``) pose in the arm base frame."""
        return SE3(self._fk_mat(self._as_q(q)), check=False)

    def fk_matrix(self, q: ArrayLike) -> np.ndarray:
        """TCP pose in the arm base frame as a 4x4 array (no SE3 object: for hot loops)."""
        return np.asarray(self._fk_mat(self._as_q(q)))

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
        return pose_error_mat(np.asarray(a.A), np.asarray(b.A))

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
        When a retry (not the seed itself) succeeds, a few more starts are
        tried and the solution closest to the seed (joint distance weighted by
        1/range) is returned, so consecutive calls don't flip configuration.

        Raises :class:`UnreachableError` (with the best residual reached) when
        no start gives a verified solution, and :class:`KinematicsError` for a
        non-finite target or seed.
        """
        tep = self._target_mat(target)
        seed = self._mid if q_seed is None else self._as_q(q_seed, "q_seed")
        return self._search.solve(tep, seed, rng, max_attempts, pos_tol, rot_tol)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a
