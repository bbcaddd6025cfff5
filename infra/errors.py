"""The one type of expected failure. Every module raises a subclass; the CLI renders any of them the
same way (message, fix, exit code) and never needs a bare ``except Exception``.

Exit codes are the interface scripts rely on: 0 ok, 1 the job or a verdict failed, 2 bad input
(nothing was created or changed).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


class StandError(Exception):
    """Something the user can act on: what went wrong, and (when known) the fix."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, fix: str = ""):
        self.message = message
        self.fix = fix
        super().__init__(f"{message}; fix: {fix}" if fix else message)

    def problems(self) -> list[dict[str, str]]:
        """Field-level problems (a configuration error has several); empty for most failures."""
        return []


class InvalidInput(StandError):
    """Bad input caught before anything was created or changed."""

    exit_code = EXIT_INVALID
