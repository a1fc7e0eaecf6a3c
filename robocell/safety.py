"""Old import path, kept so that ``import robocell.safety`` keeps working: the code lives in :mod:`robocell.motion.safety`."""

from robocell.motion.safety import *  # noqa: F401,F403
