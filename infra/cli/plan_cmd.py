"""`stand plan STACK`: what `pulumi up` would create, computed offline under mocks (no credentials)."""

from __future__ import annotations

import typer

from infra.cli.output import JsonOpt, console, emit_json, fail
from infra.config import StandConfigError


def plan(
    stack: str = typer.Argument(..., help="A stack name or a path to a stack file."),
    as_json: bool = JsonOpt,
) -> None:
    """List the resources a stack would create, with the properties a reviewer checks."""
    from infra.cloud.plan import plan as run_plan
    from infra.cloud.plan import plan_as_dict, render

    try:
        if as_json:
            emit_json({"ok": True, **plan_as_dict(stack)})
            return
        console.print(render(run_plan(stack), title=f"stand plan {stack}"))
    except StandConfigError as exc:
        fail(f"{exc.source}: {len(exc.problems)} problem(s)", as_json=as_json, problems=[p.as_dict() for p in exc.problems])
