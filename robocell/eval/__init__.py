"""Evaluation: many seeded trials of a program in randomized cells, and their report.

Lives here: seeds and results (``evaluate``), one trial (``trial``), the plan and its run (``run``), the JUnit and
HTML reports (``report``), sensor noise on a running backend (``noise``) and the engines that run trials (``engines``: in-process ``local`` and ``ray``).

May import: anything below it (core rooms, ``robocell.skills``, ``robocell.sim``, ``robocell.run``). Not the CLI.
"""
