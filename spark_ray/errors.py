"""Errors the CLI turns into exit codes instead of tracebacks.

A ``UserError`` is something the user can fix (bad flag, bad config, missing file): the CLI prints
its message and exits 2. A ``CheckFailed`` is a check that ran and found a problem: exit 1.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message names the field or file and the reason."""

    exit_code = 2


class CheckFailed(Exception):
    """A verification ran to completion and failed; the message lists what failed."""

    exit_code = 1
