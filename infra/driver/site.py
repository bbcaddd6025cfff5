"""The phases every stand shares after its hosts exist: site.yml through ansible-runner, then a
smoke request. Cloud, onprem and local stands all run these; only provisioning differs."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from infra.config.contract import Host, StackOutputs
from infra.config.loader import REPO_ROOT
from infra.config.model import Stand
from infra.config.secrets import resolve_path
from infra.driver.playbook import PlaybookFailed, PlaybookResult, ansible_env, run_playbook
from infra.driver.progress import Phases
from infra.paths import state_dir

INVENTORY_FILE = REPO_ROOT / "inventory" / "stands.yml"
SMOKE_PROMPT = "In one sentence: what is a GPU?"


def run_site(stand: Stand, phases: Phases, *, limit: str | None = None, extravars: dict | None = None,
             check: bool = True) -> PlaybookResult:
    """site.yml against the stand's hosts (the stands inventory, this stack only).
    check: raise PlaybookFailed when the play failed (else the caller reads ``.ok``)."""
    result = run_playbook(
        "site.yml", inventory=INVENTORY_FILE, private_dir=state_dir(stand.stack) / "ansible-runner",
        limit=limit or stand.stack, env={**ansible_env(), "STAND_STACKS": str(stand.source_file or stand.stack)},
        extravars=extravars, on_line=phases.detail,
    )
    if check and not result.ok:
        raise PlaybookFailed(result, "site.yml")
    return result


def smoke(stand: Stand, outputs: StackOutputs, prompt: str = SMOKE_PROMPT, *, timeout: float = 120) -> str:
    """One real chat completion through the stand's endpoint: the model's own words."""
    key = resolve_path(stand, "engine.api_key")
    body = json.dumps({"model": stand.model.served_name, "max_tokens": 48, "temperature": 0,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    request = urllib.request.Request(f"{outputs.gateway_endpoint}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["choices"][0]["message"]["content"].strip()


def close_ssh_masters(hosts: list[Host]) -> None:
    """Ask Ansible's SSH master connections to the hosts to exit (they persist for minutes).

    The control socket path is ansible.cfg's; ssh computes the same %C hash from host, port and user.
    """
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO_ROOT / "ansible.cfg")
    control_dir = cfg.get("ssh_connection", "control_path_dir", fallback="~/.ansible/cp")
    for host in hosts:
        subprocess.run(["ssh", "-o", f"ControlPath={Path(control_dir).expanduser()}/%C", "-O", "exit",
                        f"{host.ssh_user}@{host.address}"], capture_output=True, timeout=10, check=False)
