"""The ``arms`` section of a cell file: which arm, where, its gripper and its safety envelope."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from robocell.cellfile.errors import Loc, problem, problems, show
from robocell.cellfile.types import (
    GripperSpec,
    Identifier,
    NameList,
    Num,
    PoseSpec,
    RadianRange,
    Radians,
    Shape,
    Spec,
    Text,
    WorkspaceSpec,
    cell_path,
)
from robocell.errors import ConfigError
from robocell.motion.arm_models import BUILTIN_MODELS, ArmModel, get_model

CUSTOM_ARM_FIELDS = ("base_link", "tcp_link", "joints", "finger_joints", "finger_travel", "home")


def _model_name(v: Any) -> str | None:
    if v is None or v in BUILTIN_MODELS:
        return v
    raise problem(f"{show(v)} is not allowed: unknown arm model; built-in models are: "
                  f"{', '.join(sorted(BUILTIN_MODELS))} (or describe a custom arm with 'urdf')")



class _PerJoint:
    """One number for every joint, or a list with one number per joint."""

    def __init__(self, num: Num) -> None:
        self.num = num

    def __call__(self, v: Any) -> float | tuple[float, ...]:
        if isinstance(v, list | tuple):
            try:
                if not v:
                    raise problem("empty")
                return tuple(float(self.num(x)) for x in v)
            except PydanticCustomError:  # re-raised naming the whole list and the rule
                raise problem(f"{show(v)} is not allowed: must be one number or one per joint, "
                              f"each {self.num.bounds()}") from None
        return float(self.num(v))


def _mapping(v: Any) -> Any:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise problem(f"{show(v)} is not allowed: must be a mapping joint_name: [lo, hi] in rad")
    return v


PerJointSpeed = Annotated[float | tuple[float, ...], BeforeValidator(_PerJoint(Num("rad/s", gt=0)))]
PerJointAccel = Annotated[float | tuple[float, ...], BeforeValidator(_PerJoint(Num("rad/s^2", gt=0)))]


# ---- arms -------------------------------------------------------------------------------
class SafetySpec(Spec):
    """An arm's safety envelope: what every target and trajectory is checked against."""

    joint_limits: Annotated[dict[Text, RadianRange], BeforeValidator(_mapping)] = Field(default_factory=dict)
    max_joint_speed: PerJointSpeed = 1.5
    max_joint_accel: PerJointAccel = 5.0
    max_tcp_speed: Annotated[float, BeforeValidator(Num("m/s", gt=0))] = 0.5
    workspace: WorkspaceSpec = WorkspaceSpec()

    @model_validator(mode="after")
    def _check(self) -> SafetySpec:
        bad: list[tuple[Loc, str]] = [
            (("joint_limits", j), f"{show(list(v))} is not allowed: must be [lo, hi] with lo < hi (rad)")
            for j, v in self.joint_limits.items() if not v[0] < v[1]
        ]
        if bad:
            raise problems(bad)
        return self

    def speeds(self, dof: int) -> np.ndarray:
        """Maximum joint speeds (rad/s), one per joint."""
        return _per_joint(self.max_joint_speed, dof, "max_joint_speed")

    def accels(self, dof: int) -> np.ndarray:
        """Maximum joint accelerations (rad/s^2), one per joint."""
        return _per_joint(self.max_joint_accel, dof, "max_joint_accel")


def _per_joint(v: float | tuple[float, ...], dof: int, what: str) -> np.ndarray:
    if isinstance(v, tuple):
        if len(v) != dof:
            raise ConfigError(f"safety.{what} has {len(v)} values but the arm has {dof} joints")
        return np.asarray(v, dtype=float)
    return np.full(dof, float(v))


class ArmSpec(Spec):
    """One arm: a built-in ``model`` or a custom arm described by ``urdf`` and its fields."""

    name: Identifier
    model: Annotated[str | None, BeforeValidator(_model_name)] = None
    urdf: Annotated[Path | None, BeforeValidator(cell_path("URDF"))] = None
    base_link: Text | None = None
    tcp_link: Text | None = None
    joints: NameList | None = None
    finger_joints: NameList | None = None
    finger_travel: Annotated[float | None, BeforeValidator(Num("m", gt=0, lt=0.5))] = None
    base: PoseSpec = PoseSpec()
    home: Annotated[tuple[Radians, ...] | None, BeforeValidator(Shape(None, "[q1, q2, ...] in rad"))] = None
    gripper: GripperSpec = GripperSpec()
    safety: SafetySpec = SafetySpec()

    @model_validator(mode="before")
    @classmethod
    def _default_gripper_force(cls, data: Any) -> Any:
        # The closing force defaults to the built-in model's, not a global constant.
        if isinstance(data, dict) and isinstance(data.get("model"), str) and data["model"] in BUILTIN_MODELS:
            g = data.get("gripper")
            if g is None or (isinstance(g, dict) and "force" not in g):
                force = BUILTIN_MODELS[data["model"]].gripper_force
                data = {**data, "gripper": {**(g or {}), "force": force}}
        return data

    @model_validator(mode="after")
    def _check(self) -> ArmSpec:
        given = [f for f in CUSTOM_ARM_FIELDS if getattr(self, f) is not None and f != "home"]
        if self.model is None and self.urdf is None:
            models = ", ".join(sorted(BUILTIN_MODELS))
            raise problems([((), (f"neither 'model' nor 'urdf' is given: give either 'model' (a built-in arm: "
                                 f"{models}) or a custom arm: 'urdf' with {', '.join(CUSTOM_ARM_FIELDS)}"))])
        if self.model is not None and self.urdf is not None:
            raise problems([(("urdf",), (f"{show(str(self.urdf))} is not allowed together with "
                                        f"model {show(self.model)}: give either 'model' or 'urdf'"))])
        if self.model is not None and given:
            raise problems([((f,), (f"{show(getattr(self, f))} is not allowed: only a custom arm (with 'urdf') "
                                   f"takes '{f}'; built-in model '{self.model}' defines it")) for f in given])
        missing = [f for f in CUSTOM_ARM_FIELDS if getattr(self, f) is None]
        if self.urdf is not None and missing:
            raise problems([((), (f"a custom arm (with 'urdf') also needs: {', '.join(missing)} "
                                 f"(all of {', '.join(CUSTOM_ARM_FIELDS)})"))])
        model = self.arm_model()
        names = model.joint_names
        listing = ", ".join(names)
        bad: list[tuple[Loc, str]] = []
        if self.home is not None and len(self.home) != model.dof:
            bad.append((("home",), (f"{show(list(self.home))} is not allowed: has {len(self.home)} values but the "
                                   f"arm has {model.dof} joints ({listing}); give {model.dof} angles in rad")))
        for j in self.safety.joint_limits:
            if j not in names:
                bad.append((("safety", "joint_limits"), f"unknown joint {show(j)}; the arm's joints are {listing}"))
        for key in ("max_joint_speed", "max_joint_accel"):
            v = getattr(self.safety, key)
            if isinstance(v, tuple) and len(v) != model.dof:
                bad.append((("safety", key), (f"{show(list(v))} is not allowed: has {len(v)} values; give one "
                                             f"number for all joints or {model.dof} (one per joint: {listing})")))
        if bad:
            raise problems(bad)
        return self

    def arm_model(self) -> ArmModel:
        """The arm's static model: the built-in one (home and gripper force from this entry) or a custom one."""
        if self.model is not None:
            m = get_model(self.model)
            return dataclasses.replace(
                m, home=tuple(self.home) if self.home is not None else m.home, gripper_force=self.gripper.force
            )
        if self.urdf is None or any(getattr(self, f) is None for f in CUSTOM_ARM_FIELDS):
            raise ConfigError(f"arm '{self.name}': give 'model' or 'urdf' with {', '.join(CUSTOM_ARM_FIELDS)}")
        assert self.joints is not None and self.finger_joints is not None and self.home is not None
        return ArmModel(
            name=self.name, source_urdf=str(self.urdf), base_link=str(self.base_link),
            tcp_link=str(self.tcp_link), joint_names=tuple(self.joints), finger_joints=tuple(self.finger_joints),
            finger_travel=float(self.finger_travel or 0.0), home=tuple(self.home), gripper_force=self.gripper.force,
        )
