"""`stand mirror`: push a model (Hugging Face directory or GGUF file) into a stand's mirror."""

from __future__ import annotations

import typer

from infra.cli.output import JsonOpt, console, emit_json
from infra.config import load_stand
from infra.driver.progress import Phases


def mirror(
    stack: str = typer.Argument(..., help="The stand whose mirror receives the model."),
    source: str = typer.Argument(..., help="A local Hugging Face model directory, or a .gguf file."),
    prefix: str = typer.Option(None, "--prefix", help="Key prefix in the bucket (default: the stand's model prefix)."),
    as_json: bool = JsonOpt,
) -> None:
    """Push a model with its sha256 manifest (uploaded last) into the stand's mirror bucket."""
    from infra.driver.mirror import mirror as run_mirror

    result = run_mirror(load_stand(stack), source, prefix, Phases(quiet=as_json))
    if as_json:
        emit_json({"ok": True, **result})
    else:
        console.print(f"mirrored {result['objects']} objects to {result['source']}")
