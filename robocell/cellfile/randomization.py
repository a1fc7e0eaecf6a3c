"""Randomisation beyond object poses: physics, sensor noise, remote-link faults, and fixture poses.

Declared in the cell file's ``randomization`` section (and overridable on the
command line with ``--randomize KEY=VALUE``)::

    randomization:
      friction: [0.7, 1.3]          # scale factor on each object's friction
      mass: [0.8, 1.2]              # scale factor on each object's mass
      size: [0.95, 1.05]            # scale factor on each object's size (all axes alike)
      objects: [red_block]          # which objects (default: every object)
      sensor_noise:
        object_position: 0.002      # m, std dev of noise on reported object positions
        object_yaw: 0.02            # rad, std dev of noise on reported object yaw
        joint_position: 0.0005      # rad, std dev of noise on reported joint angles
      remote:                       # tcp:// backends only; the simulator ignores these
        latency: [0.0, 0.02]        # s added to each command (a number or [lo, hi])
        state_drop: 0.05            # probability of dropping each state message

Every trial draws its own values from its seed, on a random stream separate
from the pose randomisation, so adding a section never changes the poses a
seed gives.  The program sees the *nominal* cell file (sizes, masses as
written): the physics differ from what it believes, as on a real cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BeforeValidator, ValidationError, model_validator
from spatialmath import SE3

from robocell.cellfile.errors import format_errors, problems, show
from robocell.cellfile.types import Identifier, Num, Shape, Spec
from robocell.errors import ConfigError

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec

#: salt that separates this random stream from the pose stream of the same seed
_STREAM = 0x52414E44
#: salt of the fixture-pose stream: adding a fixture's ``randomize`` changes no other draw of a seed
_FIXTURE_STREAM = 0x46495854

Scale = Annotated[float, BeforeValidator(Num("(scale factor)", gt=0, le=10))]
ScaleRange = Annotated[tuple[Scale, Scale], BeforeValidator(Shape(2, "[lo, hi] scale factors (1 = as written)"))]


def _seconds_range(v: Any) -> Any:
    # a single number means a fixed latency
    if isinstance(v, int | float) and not isinstance(v, bool):
        return [v, v]
    return Shape(2, "[lo, hi] in s, or one number")(v)


Latency = Annotated[float, BeforeValidator(Num("s", ge=0, le=5))]
LatencyRange = Annotated[tuple[Latency, Latency], BeforeValidator(_seconds_range)]


class SensorNoiseSpec(Spec):
    """Gaussian noise (standard deviations) on what the program reads."""

    object_position: Annotated[float, BeforeValidator(Num("m", ge=0, le=0.05))] = 0.0
    object_yaw: Annotated[float, BeforeValidator(Num("rad", ge=0, le=0.5))] = 0.0
    joint_position: Annotated[float, BeforeValidator(Num("rad", ge=0, le=0.05))] = 0.0


class RemoteFaultSpec(Spec):
    """Link faults injected by remote (tcp://) backends."""

    latency: LatencyRange = (0.0, 0.0)
    state_drop: Annotated[float, BeforeValidator(Num("(probability)", ge=0, lt=1))] = 0.0


class RandomizationSpec(Spec):
    """The ``randomization`` section of a cell file."""

    friction: ScaleRange = (1.0, 1.0)
    mass: ScaleRange = (1.0, 1.0)
    size: ScaleRange = (1.0, 1.0)
    objects: tuple[Identifier, ...] | None = None
    sensor_noise: SensorNoiseSpec = SensorNoiseSpec()
    remote: RemoteFaultSpec = RemoteFaultSpec()

    @model_validator(mode="after")
    def _check(self) -> RandomizationSpec:
        bad: list[tuple[tuple[str, ...], str]] = [((name,), f"{show(list(v))} is not allowed: must be [lo, hi] with lo <= hi (scale factors)")
               for name, v in (("friction", self.friction), ("mass", self.mass), ("size", self.size))
               if v[0] > v[1]]
        lo, hi = self.remote.latency
        if lo > hi:
            bad.append((("remote", "latency"), f"{show([lo, hi])} is not allowed: must be [lo, hi] with lo <= hi (s)"))
        if bad:
            raise problems(bad)
        return self

    @property
    def is_identity(self) -> bool:
        return self == RandomizationSpec()


def object_problems(rnd: RandomizationSpec | None, objects: list[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """Names in ``randomization.objects`` that are not objects of the cell."""
    if rnd is None or rnd.objects is None:
        return []
    return [(("randomization", "objects", i), f"{show(n)} is not allowed: not an object of the cell; "
             f"the objects are: {', '.join(objects) or '(none)'}") for i, n in enumerate(rnd.objects) if n not in objects]


# ---- command-line overrides ----------------------------------------------------------------
def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["friction=0.8:1.2", "sensor_noise.joint_position=0.001"]`` -> nested dict."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--randomize {item!r}: write KEY=VALUE, e.g. friction=0.8:1.2 or "
                              "sensor_noise.object_position=0.002 (see docs/evaluation.md)")
        parts = text.split(":")
        try:
            value: Any = [yaml.safe_load(p) for p in parts] if len(parts) == 2 else yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = out
        *path, last = key.strip().split(".")
        for p in path:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--randomize {item!r}: '{p}' is not a section")
        node[last] = value
    return out


def merge(base: RandomizationSpec | None, overrides: dict[str, Any]) -> RandomizationSpec | None:
    """The cell file's section with command-line overrides on top, validated like the file."""
    if not overrides:
        return base
    data = base.model_dump() if base is not None else {}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    try:
        return RandomizationSpec.model_validate(data)
    except ValidationError as exc:
        lines = format_errors(exc, RandomizationSpec)
        raise ConfigError("--randomize is invalid:\n  " + "\n  ".join(lines)) from None


# ---- per-trial draws ---------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectDraw:
    friction: float = 1.0
    mass: float = 1.0
    size: float = 1.0


@dataclass(frozen=True)
class TrialConditions:
    """What one trial drew: physics scale factors, noise levels and link faults."""

    objects: dict[str, ObjectDraw] = field(default_factory=dict)
    noise: SensorNoiseSpec = SensorNoiseSpec()
    latency: float = 0.0
    state_drop: float = 0.0
    noise_seed: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "objects": {n: vars(d) for n, d in self.objects.items()},
            "latency_s": self.latency,
            "state_drop": self.state_drop,
        }


def draw(rnd: RandomizationSpec | None, cell: CellSpec, seed: int) -> TrialConditions:
    """The conditions of the trial with ``seed`` (same seed, same draws, on any machine)."""
    if rnd is None:
        return TrialConditions()
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM]))
    names = rnd.objects if rnd.objects is not None else tuple(o.name for o in cell.objects)
    objects: dict[str, ObjectDraw] = {}
    for name in names:  # fixed order: the cell file's order of ``objects``
        objects[name] = ObjectDraw(float(rng.uniform(*rnd.friction)), float(rng.uniform(*rnd.mass)),
                                   float(rng.uniform(*rnd.size)))
    latency = float(rng.uniform(*rnd.remote.latency))
    return TrialConditions(objects, rnd.sensor_noise, latency, rnd.remote.state_drop,
                           int(rng.integers(0, 2**32 - 1)))


def physical_spec(cell: CellSpec, cond: TrialConditions) -> CellSpec:
    """The cell as physics builds it for this trial: objects' friction, mass and size scaled.

    An object keeps the height of its underside, so a block on the table stays on it.
    """
    if not cond.objects:
        return cell
    objects = []
    for obj in cell.objects:
        d = cond.objects.get(obj.name)
        if d is None:
            objects.append(obj)
            continue
        size = tuple(s * d.size for s in obj.size)
        half_before = obj.half_height
        pose = obj.pose
        updated = obj.model_copy(update={"size": size, "mass": obj.mass * d.mass, "friction": obj.friction * d.friction})
        dz = updated.half_height - half_before
        xyz = (pose.xyz[0], pose.xyz[1], pose.xyz[2] + dz)
        objects.append(updated.model_copy(update={"pose": pose.model_copy(update={"xyz": xyz})}))
    return cell.replace(objects=tuple(objects))


def place_fixtures(cell: CellSpec, seed: int) -> CellSpec:
    """The cell with every fixture that has a ``randomize`` region moved for the trial with ``seed``.

    Fixtures are static and surveyed: unlike objects, whose drawn poses only
    physics knows, a fixture's drawn pose goes into the cell spec itself, so
    physics builds it there AND the program reads it there (``spec.fixture()``,
    slot poses, frames parented to the fixture).  The offset is applied as for
    objects: x, y along the world axes, yaw about the fixture's own vertical
    axis.  Drawn on its own stream (same seed, same poses, on any machine; the
    object poses and physics draws of a seed do not change).  Objects that end
    up overlapping a moved fixture are not moved: lay the cell out so the
    regions cannot meet (``docs/cell-format.md``).
    """
    if not any(f.randomize is not None for f in cell.fixtures):
        return cell
    rng = np.random.default_rng(np.random.SeedSequence([seed, _FIXTURE_STREAM]))
    fixtures = []
    for fx in cell.fixtures:  # fixed order: the cell file's order of ``fixtures``
        r = fx.randomize
        if r is None:
            fixtures.append(fx)
            continue
        dx, dy, dyaw = float(rng.uniform(*r.x)), float(rng.uniform(*r.y)), float(rng.uniform(*r.yaw))
        pose = SE3.Trans(dx, dy, 0.0) * fx.pose.se3() * SE3.Rz(dyaw)
        fixtures.append(fx.model_copy(update={"pose": type(fx.pose).from_se3(pose)}))
    return cell.replace(fixtures=tuple(fixtures))


def backend_options(address: str, cond: TrialConditions) -> dict[str, Any]:
    """Options for a remote backend's factory; the simulator has no link to disturb."""
    if address == "sim" or (cond.latency == 0.0 and cond.state_drop == 0.0):
        return {}
    return {"latency": cond.latency, "state_drop": cond.state_drop}
