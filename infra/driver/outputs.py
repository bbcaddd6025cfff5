"""A stack's outputs (hosts, mirror, endpoints): captured in .stand/<stack>/outputs.json, else from Pulumi."""

from __future__ import annotations

import json
import subprocess

from infra import paths


class OutputsUnavailable(RuntimeError):
    pass


def read_outputs(stack: str) -> dict:
    captured = paths.state_dir(stack) / "outputs.json"
    if captured.exists():
        return json.loads(captured.read_text())
    try:
        out = subprocess.run(["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
                             capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise OutputsUnavailable(
            f"no outputs for {stack}: run `stand up {stack}` (local) or `pulumi up -s {stack}`, or save "
            f"`pulumi stack output --json --show-secrets` to {captured}") from None
    if out.returncode != 0:
        raise OutputsUnavailable(f"pulumi stack output -s {stack} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)
