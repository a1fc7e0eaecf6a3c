"""Testing robot programs: assertions about a cell's world, and the pytest plugin.

``from robocell.testing import assert_in, assert_gripper_empty`` is the public face; the assertions live in
``assertions`` and the pytest plugin (fixtures ``robocell_cell``, ``robocell_skills``; option
``--robocell-backend``) in ``plugin``, registered as the ``pytest11`` entry point ``robocell.pytest_plugin``.

May import: anything below the applications (core rooms, ``robocell.run``, ``robocell.skills``, ``robocell.sim``).
"""

# everything in the assertions' __all__ (a name added there is public here too)
from robocell.testing.assertions import *  # noqa: F401,F403
from robocell.testing.assertions import __all__ as __all__
