"""A learned skill on disk: ``NAME.skill.json`` in a skills folder.

Plain JSON (no pickles, no code): the primitives' parameters, the grasp and
release poses relative to the object and the target, what the skill was
learned from (provenance) and how well it reproduces its demonstrations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robocell.errors import SkillError
from robocell.skills.learning.primitive import Primitive

FORMAT = "robocell-learned-skill"
FORMAT_VERSION = 1
SUFFIX = ".skill.json"


@dataclass(frozen=True)
class MotionModel:
    """One segment's primitive and the frame it runs in."""

    name: str  # approach | transport | retreat
    frame: str  # object | target
    primitive: Primitive
    goal: np.ndarray  # pq of the segment's end in its frame (mean over demonstrations)


@dataclass(frozen=True)
class LearnedSkill:
    """A pick-and-place skill learned from demonstrations (parameters: ``object``, ``target``)."""

    name: str
    description: str
    method: str  # dmp | promp
    cell: str
    arm_model: str
    object_example: str  # what the demonstrations picked
    target_example: str  # where they put it
    target_kind: str  # fixture | slot | object | frame: the kind of target the skill expects
    grasp: np.ndarray  # pq of the TCP at the grasp, object frame
    release: np.ndarray  # pq of the TCP at the release, target frame
    demo_grasp_world: np.ndarray  # pq of a demonstration's grasp in the world (for picking among symmetric grasps)
    motions: tuple[MotionModel, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    examples: tuple[str, ...] = ()

    def motion(self, name: str) -> MotionModel | None:
        return next((m for m in self.motions if m.name == name), None)

    # ---- file ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "name": self.name, "description": self.description,
            "examples": list(self.examples), "method": self.method, "cell": self.cell, "arm_model": self.arm_model,
            "parameters": {"object": "object to pick", "target": f"where to put it (a {self.target_kind})"},
            "object_example": self.object_example, "target_example": self.target_example,
            "target_kind": self.target_kind, "grasp": _list(self.grasp), "release": _list(self.release),
            "demo_grasp_world": _list(self.demo_grasp_world),
            "motions": [{"name": m.name, "frame": m.frame, "goal": _list(m.goal), "primitive": m.primitive.to_dict()}
                        for m in self.motions],
            "provenance": self.provenance,
        }

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)  # never leave a half-written skill where the registry would read it
        return path

    @classmethod
    def load(cls, path: str | Path) -> LearnedSkill:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SkillError(f"learned skill '{path}' cannot be read ({type(exc).__name__}: {exc}); "
                             "learn it again with `robocell learn`") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise SkillError(f"'{path}' is not a robocell learned skill (no \"format\": \"{FORMAT}\")")
        if d.get("version") != FORMAT_VERSION:
            raise SkillError(f"learned skill '{path}' has version {d.get('version')!r}; this robocell reads "
                             f"version {FORMAT_VERSION}: learn it again")
        try:
            return cls(
                name=str(d["name"]), description=str(d["description"]), method=str(d["method"]),
                cell=str(d["cell"]), arm_model=str(d["arm_model"]), object_example=str(d["object_example"]),
                target_example=str(d["target_example"]), target_kind=str(d["target_kind"]),
                grasp=_pq(d["grasp"]), release=_pq(d["release"]), demo_grasp_world=_pq(d["demo_grasp_world"]),
                motions=tuple(MotionModel(str(m["name"]), str(m["frame"]), Primitive.from_dict(m["primitive"]),
                                          _pq(m["goal"])) for m in d["motions"]),
                provenance=dict(d.get("provenance", {})), examples=tuple(str(e) for e in d.get("examples", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SkillError(f"learned skill '{path}' is malformed ({type(exc).__name__}: {exc}); "
                             "learn it again with `robocell learn`") from None


def _list(a: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(a, dtype=float).reshape(-1)]


def _pq(v: Any) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.shape != (7,) or not np.all(np.isfinite(a)):
        raise ValueError(f"a pose must be 7 finite numbers (x, y, z, qw, qx, qy, qz), got {v!r}")
    return a
