"""The ``robocell`` command line: one module per command group, registered in ``main``.

Lives here: the app and the small commands (``main``), and one module per group: ``teach``, ``record``, ``learn``,
``serve``, ``reset``, ``top``, ``doctor``, ``eval``; the progress display (``progress``).

May import: anything (it is an application). Nothing imports the CLI.
"""
