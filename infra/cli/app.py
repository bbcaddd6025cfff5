"""The `stand` command tree. Commands live in small modules; this file only wires them."""

from __future__ import annotations

import typer

from infra.cli import backend_cmd, check_cmd, local_cmds, mirror_cmd, plan_cmd, sizing_cmds

app = typer.Typer(
    name="stand",
    help="Self-hosted LLM stands: size, cost, check, plan, bring up and test them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("size")(sizing_cmds.size)
app.command("cost")(sizing_cmds.cost_cmd)
app.command("payback")(sizing_cmds.payback_cmd)
app.command("check")(check_cmd.check)
app.command("up")(local_cmds.up)
app.command("status")(local_cmds.status)
app.command("down")(local_cmds.down)
app.command("mirror")(mirror_cmd.mirror)
app.command("plan")(plan_cmd.plan)
app.add_typer(backend_cmd.backend_app, name="backend")
