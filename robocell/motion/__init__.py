"""Motion: arm models, kinematics, trajectories, planning and the safety envelope.

Lives here: the built-in arm models and their URDFs (``arm_models``, ``models/``), inverse and forward kinematics
(``kinematics``), building a solver and envelope from a cell file's arm (``kinematics_setup``), timed trajectories
(``trajectory``), path planning (``planning``) and the safety envelope (``safety``).

May import: ``robocell.errors`` (and the cell file's types for annotations only). Nothing above: motion knows
joints, poses and limits, not cells, backends or skills.
"""
