"""Evaluation engines: where trials run (``local``: a process pool; ``ray``: a Ray cluster).

``worker`` is the code each engine runs per trial; ``preload`` warms a worker process's imports.
May import: ``robocell.eval`` and everything it may import.
"""
