"""Testing robot programs: assertions about a cell's world, and the pytest plugin.

``from robocell.testing import assert_in, assert_gripper_empty`` is the public face; the assertions live in
``assertions`` and the pytest plugin (fixtures ``robocell_cell``, ``robocell_skills``; option
``--robocell-backend``) in ``plugin``, registered as the ``pytest11`` entry point ``robocell.pytest_plugin``.

May import: anything below the applications (core rooms, ``robocell.run``, ``robocell.skills``, ``robocell.sim``).
"""

from robocell.testing.assertions import (
    assert_gripper_empty,
    assert_holding,
    assert_in,
    assert_in_bin,
    assert_near,
    assert_not_in,
    assert_on,
    assert_on_table,
    describe_world,
    where_is,
)

__all__ = [
    "assert_gripper_empty", "assert_holding", "assert_in", "assert_in_bin", "assert_near", "assert_not_in",
    "assert_on", "assert_on_table", "describe_world", "where_is",
]
