"""The `stand` command tree. Commands live in small modules; this file only wires them, and
``main`` makes argument errors follow the same rules as every other failure (exit 2; with
``--json``, one JSON object on stdout)."""

from __future__ import annotations

import sys

import click
import typer

from infra.cli import backend_cmd, check_cmd, local_cmds, mirror_cmd, plan_cmd, sizing_cmds
from infra.cli.output import EXIT_INVALID, emit_json, errors, handles_errors

app = typer.Typer(
    name="stand",
    help="Self-hosted LLM stands: size, cost, check, plan, bring up and test them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for name, command in {
    "size": sizing_cmds.size,
    "cost": sizing_cmds.cost_cmd,
    "payback": sizing_cmds.payback_cmd,
    "check": check_cmd.check,
    "up": local_cmds.up,
    "status": local_cmds.status,
    "down": local_cmds.down,
    "mirror": mirror_cmd.mirror,
    "plan": plan_cmd.plan,
}.items():
    app.command(name)(handles_errors(command))
backend_app = typer.Typer(help="The Pulumi state backend (a versioned, private S3 bucket).", no_args_is_help=True)
backend_app.command("init")(handles_errors(backend_cmd.init))
app.add_typer(backend_app, name="backend")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="stand", standalone_mode=False)
    except click.UsageError as exc:  # bad arguments: name the parameter, show the usage
        param = getattr(exc, "param", None)
        field = f"--{param.name.replace('_', '-')}" if param is not None and param.param_type_name == "option" else (
            param.name if param is not None else "arguments")
        if "--json" in args:
            emit_json({"ok": False, "error": exc.format_message(), "fix": "see --help",
                       "problems": [{"field": field, "message": exc.format_message(), "fix": "see --help"}]})
        else:
            usage = exc.ctx.get_usage() if exc.ctx else ""
            errors.print(f"{usage}\nerror: {exc.format_message()}\n  fix: see `stand {' '.join(args[:1])} --help`")
        return EXIT_INVALID
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        errors.print("aborted")
        return 1
    return result if isinstance(result, int) else 0
