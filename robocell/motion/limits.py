"""The motion limits every planner and the arm server share: plain numbers, no imports.

Here rather than in ``planning``/``trajectory`` (which re-export them) so that the wire protocol's bounds
(``robocell.hardware.bounds``) can refuse the same moves without importing spatialmath and scipy: every client
and ``robocell --help`` import the protocol.
"""

# Slowest speed fraction: a full-range joint move at 1 % of a 2 rad/s limit lasts minutes; slower ones
# ran into the motion duration limit (MAX_MOTION_DURATION) after planning for seconds.
MIN_SPEED = 0.01
# Longest trajectory any planner samples, s, and the most samples one may hold: checked before the
# arrays are made (a move planned at a speed fraction of 1e-5 lasted 28 hours and took 3.4 GB to plan).
MAX_MOTION_DURATION = 600.0
MAX_TRAJECTORY_SAMPLES = 60_001
