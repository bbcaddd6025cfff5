"""`stand mirror STACK SOURCE`: put a model into a stand's mirror bucket, manifest last."""

from __future__ import annotations

from pathlib import Path

from infra.config.model import Stand
from infra.ansible_vars import read_outputs
from infra.driver.progress import Phases


def mirror(stand: Stand, source: str, prefix: str | None, phases: Phases) -> dict:
    from infra.artifacts import model as model_art
    from infra.artifacts import s3

    outputs = read_outputs(stand)
    mirror_out = (outputs or {}).get("mirror") or {}
    if not mirror_out.get("access_key"):
        raise RuntimeError(f"{stand.stack} has no mirror credentials yet: bring the stand up first "
                           f"(stand up {stand.stack}, or pulumi up -s {stand.stack})")
    endpoint = s3.S3Endpoint(mirror_out["endpoint"], mirror_out["access_key"], mirror_out["secret_key"])
    target = prefix or default_prefix(stand, source)
    with phases.phase(f"prepare {source}"):
        local_dir = model_art.mirror_source(Path(source))
    with phases.phase(f"push to s3://{mirror_out['bucket']}/{target}"):
        keys = model_art.push_model(s3.client(endpoint), mirror_out["bucket"], target, local_dir)
    return {"bucket": mirror_out["bucket"], "prefix": target, "objects": len(keys),
            "source": f"s3://{mirror_out['bucket']}/{target}"}


def default_prefix(stand: Stand, source: str) -> str:
    """The stand's own model prefix when its source points at its mirror, else models/<name>."""
    own = f"s3://{stand.mirror_bucket}/"
    if stand.model.source.startswith(own):
        return stand.model.source.removeprefix(own)
    return f"models/{Path(source).stem.lower()}"
