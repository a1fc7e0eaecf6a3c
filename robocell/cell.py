"""Old import path, kept so that ``import robocell.cell`` keeps working: the code lives in :mod:`robocell.core.cell`."""

from robocell.core.cell import *  # noqa: F401,F403
