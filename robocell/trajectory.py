"""Old import path, kept so that ``import robocell.trajectory`` keeps working: the code lives in :mod:`robocell.motion.trajectory`."""

from robocell.motion.trajectory import *  # noqa: F401,F403
