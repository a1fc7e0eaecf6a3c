"""Old import path, kept so that ``import robocell.planning`` keeps working: the code lives in :mod:`robocell.motion.planning`."""

from robocell.motion.planning import *  # noqa: F401,F403
