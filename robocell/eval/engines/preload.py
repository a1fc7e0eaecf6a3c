"""Imported once by the local engine's fork server, so every worker starts warm.

Importing PyBullet and the kinematics stack (roboticstoolbox, matplotlib,
xacro) takes seconds; a worker forked from a server that already holds them
starts in milliseconds.  Nothing here opens a physics client or starts a
thread (both would be unsafe to fork).
"""

from robocell.eval.engines.worker import quiet_stdout

quiet_stdout()  # PyBullet prints a banner to stdout on import

import pybullet  # noqa: E402,F401
import roboticstoolbox  # noqa: E402,F401
import xacrodoc  # noqa: E402,F401

import robocell.core.cell  # noqa: E402,F401
import robocell.motion.kinematics_setup  # noqa: E402,F401
import robocell.cellfile.randomization  # noqa: E402,F401
import robocell.run.runner  # noqa: E402,F401
import robocell.sim.backend  # noqa: E402,F401
import robocell.skills.builtin  # noqa: E402,F401
import robocell.eval.trial  # noqa: E402,F401
