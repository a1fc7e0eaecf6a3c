"""Old import path, kept so that ``import robocell.kinematics`` keeps working: the code lives in :mod:`robocell.motion.kinematics`."""

from robocell.motion.kinematics import *  # noqa: F401,F403
