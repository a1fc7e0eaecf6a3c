"""The pytest plugin's entry point (``pytest11``: ``robocell = "robocell.pytest_plugin"``).

The plugin lives in :mod:`robocell.testing.plugin`; this module only re-exports its hooks and fixtures so that the
entry point, ``-p robocell.pytest_plugin`` and ``pytest_plugins = ["robocell.pytest_plugin"]`` keep working.
"""

from robocell.testing.plugin import (  # noqa: F401  (pytest finds hooks and fixtures by name here)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    robocell_backend,
    robocell_cell,
    robocell_skills,
)
