"""The import paths users wrote before the rooms keep working, and give the very same objects."""

from __future__ import annotations

import importlib

import pytest

OLD_TO_NEW = {
    "robocell.cell": ("robocell.core.cell", "Cell"),
    "robocell.arm": ("robocell.core.arm", "Arm"),
    "robocell.backends": ("robocell.core.backends", "create_backend"),
    "robocell.kinematics": ("robocell.motion.kinematics", "Kinematics"),
    "robocell.trajectory": ("robocell.motion.trajectory", "JointTrajectory"),
    "robocell.planning": ("robocell.motion.planning", "plan_joints"),
    "robocell.safety": ("robocell.motion.safety", "SafetyEnvelope"),
    "robocell.cellfile": ("robocell.cellfile.spec", "load_cell_spec"),
    "robocell.testing": ("robocell.testing.assertions", "assert_in"),
    "robocell.pytest_plugin": ("robocell.testing.plugin", "pytest_addoption"),
}


@pytest.mark.parametrize("old", sorted(OLD_TO_NEW))
def test_an_old_path_gives_the_new_module_s_object(old: str) -> None:
    new, name = OLD_TO_NEW[old]
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)


def test_an_unknown_name_of_the_old_cellfile_module_is_a_plain_attribute_error() -> None:
    import robocell.cellfile

    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        robocell.cellfile.no_such_name  # noqa: B018
