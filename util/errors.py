"""The base of the project's user errors: a mistake in a flag, a config, a path or a file the user gave.

``util.cli.run_main`` prints any of them as one line ``error: ...`` and exits with status 2 (no traceback).
It derives from ValueError so that code (and files of earlier releases) catching ValueError keeps working.
"""
from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix: the message names the flag, file or key and says what to do."""
