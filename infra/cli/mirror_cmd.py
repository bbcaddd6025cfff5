"""`stand mirror`: push a model (Hugging Face directory or GGUF file) into a stand's mirror."""

from __future__ import annotations

import typer

from infra.cli.output import EXIT_FAILED, JsonOpt, console, emit_json, fail
from infra.config import StandConfigError, load_stand
from infra.driver.progress import Phases


def mirror(
    stack: str = typer.Argument(..., help="The stand whose mirror receives the model."),
    source: str = typer.Argument(..., help="A local Hugging Face model directory, or a .gguf file."),
    prefix: str = typer.Option(None, "--prefix", help="Key prefix in the bucket (default: the stand's model prefix)."),
    as_json: bool = JsonOpt,
) -> None:
    """Push a model with its sha256 manifest (uploaded last) into the stand's mirror bucket."""
    from infra.driver.mirror import mirror as run_mirror

    try:
        stand = load_stand(stack)
    except StandConfigError as exc:
        fail(f"{exc.source}: {len(exc.problems)} problem(s)", as_json=as_json, problems=[p.as_dict() for p in exc.problems])
    try:
        result = run_mirror(stand, source, prefix, Phases(quiet=as_json))
    except Exception as exc:
        fail(f"stand mirror {stack} failed: {exc}", as_json=as_json, code=EXIT_FAILED)
    if as_json:
        emit_json({"ok": True, **result})
    else:
        console.print(f"mirrored {result['objects']} objects to {result['source']}")
