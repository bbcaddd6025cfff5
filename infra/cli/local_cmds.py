"""`stand up|status|down STACK`: bring a stand up on this machine (the local target)."""

from __future__ import annotations

import typer

from infra.cli.output import EXIT_FAILED, JsonOpt, console, emit_json, fail
from infra.config import StandConfigError, load_stand
from infra.config.model import Stand
from infra.driver.progress import Phases


def _local_stand(stack: str, as_json: bool) -> Stand:
    try:
        stand = load_stand(stack)
    except StandConfigError as exc:
        fail(f"{exc.source}: {len(exc.problems)} problem(s)", as_json=as_json, problems=[p.as_dict() for p in exc.problems])
    if stand.target != "local":
        fail(f"{stack} targets {stand.target}: provision it with `pulumi up -s {stack}`, then "
             f"`ansible-playbook playbooks/site.yml -l {stack}`", as_json=as_json)
    return stand


def up(stack: str = typer.Argument("local", help="A stack whose target is local."), as_json: bool = JsonOpt) -> None:
    """Create the stand's hosts, artifact store and model mirror, run site.yml, ask the model something."""
    from infra.driver import local

    stand = _local_stand(stack, as_json)
    phases = Phases()
    try:
        outputs = local.up(stand, phases)
    except Exception as exc:  # every failure of a phase is reported, not dumped as a traceback
        fail(f"stand up {stack} failed: {exc}", as_json=as_json, code=EXIT_FAILED)
    if as_json:
        emit_json({"ok": True, "timings_s": phases.timings,
                   **{k: v for k, v in outputs.items() if k not in ("mirror",)}})
        return
    console.print(f"[bold green]{stack} is up[/]: engine {outputs['gateway_endpoint']}/v1 "
                  f"(model {stand.model.served_name}; key in .stand/{stack}/secrets/engine.api_key)")
    console.print(f"[bold]answer:[/] {outputs['answer']}")


def status(stack: str = typer.Argument("local"), as_json: bool = JsonOpt) -> None:
    """Hosts, artifact store and engine health of a local stand."""
    from infra.driver import local

    report = local.status(_local_stand(stack, as_json))
    if as_json:
        emit_json({"ok": True, **report})
        return
    for host in report["hosts"]:
        state = "[green]running[/]" if host.get("running") else "[red]stopped[/]"
        console.print(f"host {host['name']} {host['address']}: {state}")
    console.print(f"s3 {report['s3']['endpoint']}: {'running' if report['s3']['running'] else 'stopped'}")
    console.print(f"wheelhouse {report['wheelhouse']['url']}: {'running' if report['wheelhouse']['running'] else 'stopped'}")
    console.print(f"engine {report['engine']['url']}: {report['engine']['health']}")


def down(stack: str = typer.Argument("local"), as_json: bool = JsonOpt) -> None:
    """Remove everything `stand up` created on this machine."""
    from infra.driver import local

    stand = _local_stand(stack, as_json)
    phases = Phases(quiet=as_json)
    try:
        local.down(stand, phases)
    except Exception as exc:
        fail(f"stand down {stack} failed: {exc}", as_json=as_json, code=EXIT_FAILED)
    if as_json:
        emit_json({"ok": True, "stand": stack, "removed": True})
    else:
        console.print(f"{stack} is down")
