"""Reading a stand's outputs (the contract in ``contract.py``), wherever they come from.

    .stand/<stack>/outputs.json   captured `pulumi stack output --json --show-secrets`, or written
                                  by the local stand's driver
    pulumi stack output           a cloud stack, when the CLI is installed
    the model                     onprem (nothing is created) and a local stand not brought up yet
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from pydantic import ValidationError

from infra.config.contract import Mirror, StackOutputs
from infra.config.model import Stand
from infra.errors import StandError

OUTPUTS_FILE = "outputs.json"


class OutputsError(StandError):
    """A stack's outputs are missing or do not have the contract's shape; says what to run."""


def outputs_path(stack: str) -> Path:
    from infra.paths import state_dir

    return state_dir(stack) / OUTPUTS_FILE


def read_outputs(stand: Stand, *, run_pulumi: bool = True) -> StackOutputs | None:
    """The stand's outputs; None for a cloud stack that has none yet. OutputsError when broken."""
    path = outputs_path(stand.stack)
    if path.exists():
        return parse_outputs(stand, _read_json(path, stand.stack), str(path))
    if not stand.is_cloud:
        return derived_outputs(stand)
    if run_pulumi and shutil.which("pulumi"):
        data = _pulumi_outputs(stand.stack)
        return parse_outputs(stand, data, f"pulumi stack output -s {stand.stack}") if data else None
    return None


def derived_outputs(stand: Stand) -> StackOutputs:
    """The contract of a stand Pulumi does not create: what the model (and the local driver) know."""
    if stand.target == "local":
        from infra.local.stand import outputs as local_outputs

        return local_outputs(stand)
    return model_outputs(stand)


def model_outputs(stand: Stand, **overrides) -> StackOutputs:
    """The outputs that follow from the model alone (the onprem program exports exactly these)."""
    from infra.cloud.common import mirror_endpoint

    hosts = stand.planned_hosts()
    edge = next((h for h in hosts if h.has("edge")), None)
    fields = {
        "stand": stand.stack,
        "target": stand.target,
        "hosts": hosts,
        "gateway_endpoint": f"https://{edge.address}" if edge else None,
        # The mirror is the team's own S3 (artifacts.endpoint); its keys are the model's secrets.
        "mirror": Mirror(bucket=stand.mirror_bucket, endpoint=mirror_endpoint(stand)),
    }
    if "fallback_endpoint" not in overrides:
        fields["fallback_endpoint"] = fallback_endpoint(stand)
    return StackOutputs(**{**fields, **overrides})


def fallback_endpoint(stand: Stand) -> str | None:
    """The fallback stand's gateway endpoint, from its own outputs; None if it has none yet."""
    from infra.config.loader import load_stand

    name = stand.gateway.fallback_stack
    if not name:
        return None
    try:
        outputs = read_outputs(load_stand(name, check=False), run_pulumi=False)
    except StandError:
        return None  # a broken fallback stack must not hide this one; `stand check` reports it
    return outputs.gateway_endpoint if outputs else None


def parse_outputs(stand: Stand, data: dict, source: str) -> StackOutputs:
    try:
        outputs = StackOutputs.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OutputsError(f"{source}: outputs do not match the contract ({where}: {first['msg']})",
                           f"run pulumi up -s {stand.stack} with this repository's program") from None
    if outputs.stand != stand.stack:
        raise OutputsError(f"{source}: outputs are of stand {outputs.stand!r}, not {stand.stack!r}",
                           f"remove {source} or capture the outputs of stack {stand.stack}")
    return outputs


def write_outputs(outputs: StackOutputs) -> Path:
    """Write a stand's outputs file (0600: it holds the mirror's keys), atomically."""
    from infra.fsutil import write_private
    from infra.paths import private_state

    private_state(outputs.stand)
    path = outputs_path(outputs.stand)
    write_private(path, json.dumps(outputs.as_json(), indent=2) + "\n")
    return path


def _read_json(path: Path, stack: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OutputsError(f"{path}: not JSON ({exc})",
                           f"pulumi stack output --json --show-secrets -s {stack} > {path}") from None


def _pulumi_outputs(stack: str) -> dict | None:
    from infra.config.loader import REPO_ROOT

    try:
        out = subprocess.run(["pulumi", "stack", "output", "--json", "--show-secrets", "-s", stack],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        data = json.loads(out.stdout or "{}")
    except json.JSONDecodeError:
        return None
    return data or None  # a stack that was never brought up has no outputs: {}
