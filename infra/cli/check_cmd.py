"""`stand check`: validate a stack before anything is created; exit 2 with every problem."""

from __future__ import annotations

import typer

from infra import engine, sizing
from infra.cli.output import JsonOpt, console, emit_json
from infra.config import load_stand
from infra.config.checks import fit, resolve_offer
from infra.licence import verdict


def check(
    stack: str = typer.Argument(..., help="A stack name (stacks/Pulumi.NAME.yaml) or a path to a stack file."),
    as_json: bool = JsonOpt,
) -> None:
    """Validate a stack: target, GPUs, model fit with headroom, licence verdict."""
    stand = load_stand(stack)
    req, usable = fit(stand)
    hosts_engine = stand.hosts.engine
    offer = resolve_offer(stand) if stand.is_cloud else None
    lic = verdict(stand.model, stand.stack)
    tools, reasoning = engine.parsers(stand)
    summary = {
        "ok": True, "stack": stand.stack, "target": stand.target,
        "hosts": [h.as_output() for h in stand.planned_hosts()],
        "engine": {"gpu": hosts_engine.gpu, "gpus_per_host": hosts_engine.gpus_per_host,
                   "tensor_parallel_size": stand.tensor_parallel_size, "offer": offer.id if offer else None,
                   "tool_call_parser": tools, "reasoning_parser": reasoning},
        "fit": {"needed_gb": req.total_gb, "usable_gb": usable, "headroom_gb": round(usable - req.total_gb, 3)},
        "licence": {"id": lic.licence, "restricted": lic.restricted, "accepted": lic.accepted, "allowed": lic.allowed},
    }
    if as_json:
        emit_json(summary)
        return
    where = f" ({offer.id})" if offer else ""
    console.print(f"ok {stand.stack}: target {stand.target}, {len(summary['hosts'])} host(s)")
    console.print(f"  engine: {hosts_engine.gpus_per_host} x {hosts_engine.gpu} per host x {hosts_engine.replicas} replica(s){where},"
                  f" tensor parallel {stand.tensor_parallel_size}")
    console.print(f"  model: {stand.model.served_name} {stand.model.precision} needs {sizing.fmt_gb(req.total_gb)} GB,"
                  f" group has {sizing.fmt_gb(usable)} GB, headroom {sizing.fmt_gb(usable - req.total_gb)} GB")
    console.print(f"  licence: {lic}")
    family = stand.model.family or "no family"
    console.print(f"  tool calling: {tools or f'off ({family} has no vLLM tool-call parser)'}; "
                  f"reasoning output: {reasoning or f'off ({family} has no vLLM reasoning parser)'}")
