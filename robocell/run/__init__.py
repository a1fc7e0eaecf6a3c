"""Running a program file or a Python skill script against a loaded cell (``runner``).

May import: the core rooms and ``robocell.skills``. Used by evaluation, the CLI and the pytest plugin.
"""
