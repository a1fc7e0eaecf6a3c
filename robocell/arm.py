"""Old import path, kept so that ``import robocell.arm`` keeps working: the code lives in :mod:`robocell.core.arm`."""

from robocell.core.arm import *  # noqa: F401,F403
