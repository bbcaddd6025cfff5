"""`stand up|status|down STACK`: bring a stand up on this machine (the local target)."""

from __future__ import annotations

import typer

from infra.cli.output import JsonOpt, console, emit_json
from infra.config import load_stand
from infra.config.model import Stand
from infra.driver.progress import Phases
from infra.errors import InvalidInput


def _local_stand(stack: str) -> Stand:
    stand = load_stand(stack)
    if stand.target != "local":
        raise InvalidInput(f"{stack} targets {stand.target}, not this machine",
                           f"provision it with `pulumi up -s {stack}`, then "
                           f"`ansible-playbook playbooks/site.yml -l {stack}`")
    return stand


def up(stack: str = typer.Argument("local", help="A stack whose target is local."), as_json: bool = JsonOpt) -> None:
    """Create the stand's hosts, artifact store and model mirror, run site.yml, ask the model something."""
    from infra.local import stand as local

    stand = _local_stand(stack)
    phases = Phases()
    outputs, report = local.up(stand, phases)
    if as_json:
        public = outputs.as_json()
        public.pop("mirror")  # its keys stay in the outputs file
        emit_json({"ok": True, "timings_s": phases.timings, **public, **report})
        return
    console.print(f"{stack} is up: engine {outputs.gateway_endpoint}/v1 (model {stand.model.served_name}; "
                  f"key in .stand/{stack}/secrets/engine.api_key)", style="bold green")
    console.print(f"answer: {report['answer']}")


def status(stack: str = typer.Argument("local"), as_json: bool = JsonOpt) -> None:
    """Hosts, artifact store and engine health of a local stand."""
    from infra.local import stand as local

    report = local.status(_local_stand(stack))
    if as_json:
        emit_json({"ok": True, **report})
        return
    for host in report["hosts"]:
        console.print(f"host {host['name']} {host['address']}: {'running' if host.get('running') else 'stopped'}",
                      style="green" if host.get("running") else "red")
    console.print(f"s3 {report['s3']['endpoint']}: {'running' if report['s3']['running'] else 'stopped'}")
    console.print(f"wheelhouse {report['wheelhouse']['url']}: {'running' if report['wheelhouse']['running'] else 'stopped'}")
    console.print(f"engine {report['engine']['url']}: {report['engine']['health']}")


def down(stack: str = typer.Argument("local"), as_json: bool = JsonOpt) -> None:
    """Remove everything `stand up` created on this machine."""
    from infra.local import stand as local

    stand = _local_stand(stack)
    local.down(stand, Phases(quiet=as_json))
    if as_json:
        emit_json({"ok": True, "stand": stack, "removed": True})
    else:
        console.print(f"{stack} is down")
