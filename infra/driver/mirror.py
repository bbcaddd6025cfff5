"""`stand mirror STACK SOURCE`: put a model into a stand's mirror bucket, manifest last."""

from __future__ import annotations

from pathlib import Path

from infra.config.model import Stand
from infra.config.outputs import OutputsError, read_outputs
from infra.config.secrets import mirror_key_paths, resolve_path
from infra.driver.progress import Phases


def mirror(stand: Stand, source: str, prefix: str | None, phases: Phases) -> dict:
    from infra.artifacts import model as model_art
    from infra.artifacts import s3

    outputs = read_outputs(stand)
    if outputs is None:
        raise OutputsError(f"{stand.stack} has no outputs yet", f"pulumi up -s {stand.stack}")
    mirror_out = outputs.mirror
    access, secret = (resolve_path(stand, p, outputs) for p in mirror_key_paths(stand))
    endpoint = s3.S3Endpoint(mirror_out.endpoint, access, secret)
    target = prefix or default_prefix(stand, source)
    with phases.phase(f"prepare {source}"):
        local_dir = model_art.mirror_source(Path(source))
    with phases.phase(f"push to s3://{mirror_out.bucket}/{target}"):
        keys = model_art.push_model(s3.client(endpoint), mirror_out.bucket, target, local_dir)
    return {"bucket": mirror_out.bucket, "prefix": target, "objects": len(keys),
            "source": f"s3://{mirror_out.bucket}/{target}"}


def default_prefix(stand: Stand, source: str) -> str:
    """The stand's own model prefix when its source points at its mirror, else models/<name>."""
    own = f"s3://{stand.mirror_bucket}/"
    if stand.model.source.startswith(own):
        return stand.model.source.removeprefix(own)
    return f"models/{Path(source).stem.lower()}"
