"""`stand plan STACK`: what `pulumi up` would create, computed offline under mocks (no credentials)."""

from __future__ import annotations

import typer

from infra.cli.output import JsonOpt, console, emit_json


def plan(
    stack: str = typer.Argument(..., help="A stack name or a path to a stack file."),
    as_json: bool = JsonOpt,
) -> None:
    """List the resources a stack would create, with the properties a reviewer checks."""
    from infra.cloud.plan import plan as run_plan
    from infra.cloud.plan import plan_as_dict, render

    if as_json:
        emit_json({"ok": True, **plan_as_dict(stack)})
        return
    console.print(render(run_plan(stack), title=f"stand plan {stack}"))
