"""The pytest plugin's entry point (``pytest11``: ``robocell = "robocell.pytest_plugin"``).

The plugin lives in :mod:`robocell.testing.plugin`; this module only re-exports its hooks and fixtures so that the
entry point, ``-p robocell.pytest_plugin`` and ``pytest_plugins = ["robocell.pytest_plugin"]`` keep working.
"""

# every public name, so that a hook or fixture added to the plugin is registered through this entry point too
from robocell.testing.plugin import *  # noqa: F401,F403
