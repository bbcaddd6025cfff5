"""One place that decides how results reach the terminal: plain text for people, one JSON object for
scripts, and one renderer of every expected failure (message, fix, exit code).

Text is never interpreted as markup: a model name, a path or a fix like ``roles: [engine]`` prints
exactly as written (the consoles have markup off; styles are passed as ``style=``).
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from rich.console import Console

from infra.errors import EXIT_FAILED, EXIT_INVALID, StandError

console = Console(markup=False, highlight=False, soft_wrap=True)
errors = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)  # greppable: no wrapping

JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of text.")

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "JsonOpt", "console", "emit_json", "errors", "fail", "handles_errors"]


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: such a number becomes null (it means "undefined" here)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n")


def fail(message: str, *, as_json: bool, code: int = EXIT_INVALID, problems: list[dict] | None = None,
         fix: str = "") -> NoReturn:
    if as_json:
        emit_json({"ok": False, "error": message, "fix": fix, "problems": problems or []})
    else:
        errors.print(f"error: {message}", style="bold red")
        for p in problems or []:
            errors.print(f"  - {p['field']}: {p['message']}")
            if p.get("fix"):
                errors.print(f"      fix: {p['fix']}")
        if fix and not problems:
            errors.print(f"  fix: {fix}")
    raise typer.Exit(code)


def handles_errors(command: Callable) -> Callable:
    """Render any StandError the command raises (its ``--json`` decides the form); bugs still show
    their traceback, since they are ours to fix."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except StandError as exc:
            fail(exc.message, as_json=bool(kwargs.get("as_json")), code=exc.exit_code, problems=exc.problems(),
                 fix=exc.fix)

    return wrapper
