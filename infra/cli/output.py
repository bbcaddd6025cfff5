"""One place that decides how results reach the terminal: rich for people, one JSON object for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of text.")

EXIT_INVALID = 2  # bad input: the stand or the arguments; nothing was changed
EXIT_FAILED = 1  # the job itself failed


def emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str, *, as_json: bool, code: int = EXIT_INVALID, problems: list[dict] | None = None) -> NoReturn:
    if as_json:
        emit_json({"ok": False, "error": message, "problems": problems or []})
    else:
        errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)  # greppable: no wrapping
        for p in problems or []:
            errors.print(f"  - [bold]{p['field']}[/]: {p['message']}", highlight=False)
            if p.get("fix"):
                errors.print(f"      fix: {p['fix']}", highlight=False)
    raise typer.Exit(code)
