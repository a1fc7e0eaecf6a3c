"""Recording demonstrations: the demonstration file, the recorder and the scripted demonstrations.

Lives here: the demonstration file format (``demonstration``), recording a cell's arms while they move
(``recorder``) and the scripted demonstrations used by ``robocell record --script`` (``demo_scripts``).

May import: ``robocell.errors``, ``robocell.cellfile``, ``robocell.motion``, ``robocell.core``. Used by
``robocell.skills`` (learning), ``robocell.sim`` and ``robocell.hardware`` (sampling), so never imports them.
"""
