"""Cell: a validated cell file plus the running backend that animates it."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from spatialmath import SE3

from robocell.core.capabilities import Renders
from robocell.core.backends import Backend, create_backend
from robocell.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import numpy as np

    from robocell.core.arm import Arm, Gripper
    from robocell.cellfile.spec import CellSpec

_Device = TypeVar("_Device")  # an Arm or a Gripper, looked up by name


class Cell:
    """Arms, grippers, objects and named frames of one cell, on one backend.

    ``Cell.load("tabletop.yaml")`` runs in simulation; ``backend="tcp://host:port"``
    drives hardware through the same contracts.
    """

    def __init__(self, spec: CellSpec, backend: Backend, address: str = "sim") -> None:
        self.spec = spec
        self.backend = backend
        self.address = address
        # told about every skill a script calls (not the skills those call): (skill, args, status)
        # with status "start", "done" or "failed"; `robocell run` prints progress with it
        self.on_skill_call: Callable[[str, dict[str, Any], str], None] | None = None

    @classmethod
    def load(cls, path: str | Path, backend: str = "sim", **options: Any) -> Cell:
        """Validate the cell file and start the backend (options: seed, gui, realtime, record, camera).

        With a ``seed`` (simulation), fixtures with a ``randomize`` region are
        moved for that seed, and this cell's ``spec`` holds their drawn poses:
        the program sees where they really are, as on a surveyed cell.
        """
        from robocell.cellfile.spec import load_cell_spec
        from robocell.cellfile.randomization import place_fixtures

        spec = load_cell_spec(path)
        seed = options.get("seed")
        if seed is not None:
            spec = place_fixtures(spec, int(seed))
        return cls(spec, create_backend(spec, backend, **options), backend)

    # ---- devices ------------------------------------------------------------
    def arm(self, name: str | None = None) -> Arm:
        return self._pick(self.backend.arms, name, "arm")

    def gripper(self, name: str | None = None) -> Gripper:
        return self._pick(self.backend.grippers, name, "arm")

    def _pick(self, table: Mapping[str, _Device], name: str | None, kind: str) -> _Device:
        if name is None:
            if len(table) != 1:
                raise ConfigError(
                    f"the cell has {len(table)} {kind}s ({', '.join(table)}); name the one you mean"
                )
            return next(iter(table.values()))
        if name not in table:
            raise ConfigError(f"unknown {kind} '{name}'; the cell's {kind}s are: {', '.join(table)}")
        return table[name]

    # ---- world model ----------------------------------------------------------
    @property
    def objects(self) -> list[str]:
        return [o.name for o in self.spec.objects]

    @property
    def fixtures(self) -> list[str]:
        return [f.name for f in self.spec.fixtures]

    def object_pose(self, name: str) -> SE3:
        if name not in self.objects:
            raise ConfigError(
                f"unknown object '{name}'; the cell's objects are: {', '.join(self.objects) or '(none)'}"
            )
        return self.backend.object_pose(name)

    def held_object(self, arm: str | None = None) -> str | None:
        arm_name = self.arm(arm).name
        return self.backend.held_object(arm_name)

    def frame_names(self) -> list[str]:
        names = ["world"] + [a.name for a in self.spec.arms] + self.objects + self.fixtures
        for fx in self.spec.fixtures:
            if fx.slots is not None:
                names += list(fx.slot_poses())
        names += [f.name for f in self.spec.frames]
        return names

    def frame(self, name: str) -> SE3:
        """World pose of a named frame: world, an arm base, object, fixture, tray slot or cell frame."""
        if name == "world":
            return SE3()
        for a in self.spec.arms:
            if a.name == name:
                return a.base.se3()
        if name in self.objects:
            return self.object_pose(name)
        for fx in self.spec.fixtures:
            if fx.name == name:
                return fx.pose.se3()
            if fx.slots is not None and name in (slots := fx.slot_poses()):
                return slots[name]
        for f in self.spec.frames:
            if f.name == name:
                return self.frame(f.parent) * f.pose.se3()
        raise ConfigError(
            f"unknown frame '{name}'; the cell's frames are: {', '.join(self.frame_names())}"
        )

    # ---- time and pictures ------------------------------------------------------
    def wait(self, seconds: float) -> None:
        self.backend.wait(seconds)

    def render(self, camera: str | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
        if not isinstance(self.backend, Renders):
            raise ConfigError(f"backend '{self.address}' cannot render pictures; use the sim backend")
        image: np.ndarray = self.backend.render(camera, size)
        return image

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Cell:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
