"""Old import path, kept so that ``import robocell.backends`` keeps working: the code lives in :mod:`robocell.core.backends`."""

from robocell.core.backends import *  # noqa: F401,F403
