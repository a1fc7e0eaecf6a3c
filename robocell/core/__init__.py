"""The contracts: what every program, backend and tool agrees on.

Lives here: the ``Arm`` and ``Gripper`` contracts (``arm``), the ``Cell`` world model (``cell``), the backend
``Protocol`` and its registry (``backends``: ``backend="sim"`` or ``"tcp://host:port"``, resolved by name), the
optional capabilities of a backend (``capabilities``), the one lookup of plugins by name (``plugins``: backends,
drivers, skill packages), writing pictures (``images``) and the rule for output paths (``outputs``).

May import: ``robocell.errors``, ``robocell.motion``, ``robocell.cellfile``. Never ``robocell.sim``,
``robocell.hardware`` or ``robocell.skills`` at module import time: backends are found by name at run time.
"""
