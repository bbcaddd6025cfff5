"""The one mapping from the Stand model (and a stack's outputs) to Ansible variables.

    outputs = read_outputs(stand)                   # the stack outputs contract, or None
    hosts = hosts_of(outputs)                       # [StandHost, ...]
    group_vars(stand, eager_resolver(stand), outputs)   # for the stand's group
    host_vars(stand, host, bastion=bastion_of(stand, hosts))

Variable names are the roles' own (roles/*/defaults/main.yml): common_*, model_weights_*, vllm_*,
nvidia_driver_*. A value the model decides is always set here, so a role default never decides it.
``stand_*`` variables describe the stand for roles that come later (gateway, monitoring).

Stack outputs (the Pulumi program exports exactly these; onprem and local derive them here):
    stand, target, hosts: [{name, roles, private_address, public_address|null, gpus, gpu, ssh_user}],
    gateway_endpoint, mirror: {bucket, endpoint, access_key, secret_key}, fallback_endpoint

Secrets: every secret variable comes from a resolver, ``(path, ref) -> str``. ``path`` is the
secret's Pulumi config path (``gateway.consumers[0].key``) with ``ref`` its SecretRef, or
``outputs.mirror.secret_key`` with ``ref`` None for a secret stack output. ``eager_resolver``
returns the value (infra.config.secrets.resolve); the inventory plugin uses ``lookup_resolver``,
which returns a template that resolves the value only when a task uses it, so secrets are never
printed by ``ansible-inventory`` nor written anywhere by the inventory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra import catalog
from infra.artifacts.wheelhouse import WEIGHTS_TOOLS
from infra.cloud.common import mirror_endpoint  # one rule for clouds and Ansible
from infra.config.loader import REPO_ROOT, STACKS_DIR, load_stand
from infra.config.model import CLOUDS, Stand
from infra.config.secrets import SecretRef, SecretUnavailable, resolve
from infra.paths import state_dir

OUTPUTS_FILE = "outputs.json"
LOOKUP = "llm_stands_secret"  # plugins/lookup/llm_stands_secret.py
HTTPS_PORT = 443
LOCAL_WHEELHOUSE_PORT = 8099  # infra.artifacts.wheelhouse.STAND_PORT (not imported: keeps this import light)
LOCAL_ENGINE_LOCK = "engine.txt"
# vLLM --dtype per model precision; quantised checkpoints carry their own (auto).
VLLM_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}

SecretResolver = Callable[[str, "SecretRef | None"], str]


class OutputsError(RuntimeError):
    """A stack's outputs are missing or do not have the contract's shape; says what to run."""


# -- the outputs contract ---------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OutputHost(_Out):
    name: str
    roles: list[str] = Field(min_length=1)
    private_address: str
    public_address: str | None = None
    gpus: int = 0
    gpu: str | None = None
    ssh_user: str


class OutputMirror(_Out):
    bucket: str
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None


class StackOutputs(_Out):
    # Extra keys pass: the local driver adds wheelhouse_url and ssh_private_key.
    model_config = ConfigDict(extra="allow", frozen=True)

    stand: str
    target: str
    hosts: list[OutputHost]
    gateway_endpoint: str | None = None
    mirror: OutputMirror
    fallback_endpoint: str | None = None


@dataclass(frozen=True)
class StandHost:
    name: str
    roles: tuple[str, ...]
    private_address: str
    public_address: str | None
    gpus: int
    gpu: str | None
    ssh_user: str

    @property
    def address(self) -> str:
        """Where Ansible connects: the public address when there is one."""
        return self.public_address or self.private_address


def hosts_of(outputs: dict) -> list[StandHost]:
    return [StandHost(h["name"], tuple(h["roles"]), h["private_address"], h.get("public_address"),
                      int(h.get("gpus") or 0), h.get("gpu"), h["ssh_user"]) for h in outputs["hosts"]]


def outputs_from_model(stand: Stand) -> dict:
    """The outputs contract for stands Pulumi does not create (onprem, local)."""
    hosts = [p.as_output() for p in stand.planned_hosts()]
    edge = next((h for h in hosts if "edge" in h["roles"]), None)
    gateway = f"https://{edge['public_address'] or edge['private_address']}" if edge else None
    access, secret = _mirror_keys(stand)
    return {
        "stand": stand.stack,
        "target": stand.target,
        "hosts": hosts,
        "gateway_endpoint": gateway,
        "mirror": {"bucket": stand.mirror_bucket, "endpoint": mirror_endpoint(stand),
                   "access_key": access, "secret_key": secret},
        "fallback_endpoint": _fallback_endpoint(stand),
    }


def _mirror_keys(stand: Stand) -> tuple[str | None, str | None]:
    """Keys of a non-cloud stand's mirror: the local S3 server's, or the model's (onprem); None if unset."""
    if stand.target == "local":
        # infra.artifacts.seaweed.SeaweedServer(state_dir(stack)) keeps them here.
        creds = state_dir(stand.stack) / "seaweedfs" / "credentials.json"
        if creds.exists():
            data = json.loads(creds.read_text())
            return data["access_key"], data["secret_key"]
        return None, None
    return tuple(_try_resolve(stand, f"artifacts.{name}") for name in ("access_key", "secret_key"))


def _try_resolve(stand: Stand, path: str) -> str | None:
    ref = secret_paths(stand).get(path)
    if ref is None:
        return None
    try:
        return resolve(ref, path=path, stack=stand.stack, state_dir=state_dir(stand.stack))
    except SecretUnavailable:
        return None  # said by _output_secret when a task needs it


def _fallback_endpoint(stand: Stand) -> str | None:
    name = stand.gateway.fallback_stack
    if not name:
        return None
    try:
        fallback = load_stand(name, check=False)
        outputs = read_outputs(fallback, run_pulumi=False)
    except Exception:  # noqa: BLE001 - a broken fallback stack must not hide this one
        return None
    return outputs.get("gateway_endpoint") if outputs else None


def outputs_path(stack: str) -> Path:
    return state_dir(stack) / OUTPUTS_FILE


def read_outputs(stand: Stand, *, run_pulumi: bool = True) -> dict | None:
    """The stack's outputs: .stand/<stack>/outputs.json, else `pulumi stack output` (cloud), else
    derived from the model (onprem, local). None for a cloud stack with no outputs yet.
    Raises OutputsError when outputs exist but are broken."""
    path = outputs_path(stand.stack)
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise OutputsError(f"{path}: not JSON ({exc}); rewrite it with "
                               f"pulumi stack output --json --show-secrets -s {stand.stack} > {path}") from None
        return _validated(stand, data, str(path))
    if stand.target not in CLOUDS:
        return outputs_from_model(stand)
    if run_pulumi and shutil.which("pulumi"):
        data = _pulumi_outputs(stand.stack)
        return _validated(stand, data, f"pulumi stack output -s {stand.stack}") if data else None
    return None


def _pulumi_outputs(stack: str) -> dict | None:
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


def _validated(stand: Stand, data: dict, source: str) -> dict:
    try:
        outputs = StackOutputs.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise OutputsError(f"{source}: outputs do not match the contract ({where}: {first['msg']}); "
                           f"run pulumi up -s {stand.stack} with this repository's program") from None
    if outputs.stand != stand.stack:
        raise OutputsError(f"{source}: outputs are of stand {outputs.stand!r}, not {stand.stack!r}")
    return outputs.model_dump()


def output_value(outputs: dict, dotted: str):
    value = outputs
    for part in dotted.split("."):
        value = value[part]
    return value


# -- secrets -------------------------------------------------------------------------------------


def secret_paths(stand: Stand) -> dict[str, SecretRef]:
    """Every secret of the model by its Pulumi config path (`gateway.consumers[0].key`)."""
    found: dict[str, SecretRef] = {}

    def walk(value, path: str) -> None:
        if isinstance(value, SecretRef):
            found[path] = value
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{path}.{name}" if path else name)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(stand, "")
    return found


def eager_resolver(stand: Stand, outputs: dict | None = None) -> SecretResolver:
    """Resolve secrets now (the driver, tests): infra.config.secrets.resolve, or the outputs."""

    def resolver(path: str, ref: SecretRef | None) -> str:
        if ref is None:
            return _output_secret(stand, outputs, path)
        return resolve(ref, path=path, stack=stand.stack, state_dir=state_dir(stand.stack))

    return resolver


def lookup_resolver(stand: Stand) -> SecretResolver:
    """A template that resolves the secret when a task uses it (see plugins/lookup/)."""
    # A stack file outside stacks/ (`stand up path/Pulumi.x.yaml`) is found again only by its path.
    source = stand.source_file
    stack = str(source) if source is not None and source.parent != STACKS_DIR else stand.stack

    def resolver(path: str, ref: SecretRef | None) -> str:
        return "{{ lookup('%s', '%s', stack='%s') }}" % (LOOKUP, path, stack)

    return resolver


def resolve_secret(stack: str, path: str) -> str:
    """What the lookup plugin calls: the value of one secret path of a stack (name or file path)."""
    stand = load_stand(stack, check=False)
    if path.startswith("outputs."):
        return _output_secret(stand, None, path)
    refs = secret_paths(stand)
    if path not in refs:
        raise KeyError(f"{stack}: no secret at {path}; secrets of this stand: {', '.join(refs)}")
    return resolve(refs[path], path=path, stack=stand.stack, state_dir=state_dir(stand.stack))


def _output_secret(stand: Stand, outputs: dict | None, path: str) -> str:
    outputs = outputs if outputs is not None else read_outputs(stand)
    if outputs is None:
        raise OutputsError(f"{stand.stack} has no outputs yet: run pulumi up -s {stand.stack}")
    value = output_value(outputs, path.removeprefix("outputs."))
    if not value:
        hint = ("start the local stand's S3 server (stand up local)" if stand.target == "local" else
                _unresolved(stand, f"artifacts.{path.rsplit('.', 1)[-1]}") if stand.target == "onprem" else
                f"run pulumi up -s {stand.stack}")
        raise OutputsError(f"{stand.stack}: stack output {path.removeprefix('outputs.')} is empty: {hint}")
    return value


def _unresolved(stand: Stand, path: str) -> str:
    """Why a secret of the model has no value: the resolver's own words (which env var, which CLI)."""
    ref = secret_paths(stand).get(path)
    if ref is None:
        return f"set {path} in the stack"
    try:
        resolve(ref, path=path, stack=stand.stack, state_dir=state_dir(stand.stack))
    except SecretUnavailable as exc:
        return str(exc)
    return f"{path} resolved only now: run again"


# -- variables -----------------------------------------------------------------------------------


def group_vars(stand: Stand, secrets_resolver: SecretResolver, outputs: dict | None = None) -> dict:
    """Variables of the stand's group: everything the model decides for all its hosts."""
    outputs = outputs if outputs is not None else (read_outputs(stand) or outputs_from_model(stand))
    hosts = hosts_of(outputs)
    engine, eng = stand.engine, stand.hosts.engine
    cat = catalog.load()
    mirror = outputs["mirror"]
    storage_region = cat.clouds[stand.target].storage_region if stand.target in cat.clouds else "us-east-1"
    secret = secrets_resolver
    variables = {
        "stand_stack": stand.stack,
        "stand_target": stand.target,
        "stand_subnet_cidr": str(stand.network.subnet_cidr),
        "stand_public_cidrs": [str(c) for c in stand.network.public_cidrs],
        "stand_gateway_port": stand.gateway.port,
        "stand_gateway_endpoint": outputs.get("gateway_endpoint"),
        "stand_fallback_endpoint": outputs.get("fallback_endpoint"),
        "stand_engine_endpoints": [f"http://{h.private_address}:{engine.port}" for h in hosts if "engine" in h.roles],
        # common
        "common_admin_cidrs": [str(c) for c in stand.network.admin_cidrs],
        # model_weights
        "model_weights_source": stand.model.source,
        "model_weights_name": stand.model.served_name,
        "model_weights_s3_endpoint": mirror.get("endpoint") or "",
        "model_weights_s3_region": storage_region,
        "model_weights_s3_access_key": secret("outputs.mirror.access_key", None),
        "model_weights_s3_secret_key": secret("outputs.mirror.secret_key", None),
        # vllm
        "vllm_device": eng.device,
        "vllm_version": engine.version,
        "vllm_served_model_name": stand.model.served_name,
        "vllm_tensor_parallel_size": stand.tensor_parallel_size,
        "vllm_max_model_len": engine.max_model_len,
        "vllm_gpu_memory_utilization": engine.gpu_memory_utilization,
        "vllm_max_num_seqs": engine.max_num_seqs,
        # An explicit engine dtype wins (CPU engines need float32); else the weights' own precision.
        "vllm_dtype": engine.dtype if engine.dtype != "auto" else VLLM_DTYPE.get(stand.model.precision, "auto"),
        "vllm_cpu_kvcache_space_gb": engine.cpu_kv_cache_gb,
        "vllm_enforce_eager": engine.enforce_eager,
        "vllm_extra_args": list(engine.extra_args),
        "vllm_api_key": secret("engine.api_key", engine.api_key),
        "vllm_port": engine.port,
        # nvidia_driver
        "nvidia_driver_expected_arch": cat.gpus[eng.gpu].arch if eng.gpu in cat.gpus else None,
        "nvidia_driver_vendor_image_driver": _vendor_image_driver(stand),
    }
    if stand.target == "local":
        variables.update(_local_vars(stand, outputs))
    return variables


def _local_vars(stand: Stand, outputs: dict) -> dict:
    """The local stand: wheels from the control machine's HTTP wheelhouse on the bridge (the hosts'
    only source), and the SSH key of its nspawn hosts. Both as the local driver writes them into
    outputs.json; derived from its layout when the stand was not brought up yet."""
    bridge = str(stand.network.subnet_cidr.network_address + 1)
    wheels = (outputs.get("wheelhouse_url") or f"http://{bridge}:{LOCAL_WHEELHOUSE_PORT}").rstrip("/")
    variables = {
        "vllm_pip_find_links": f"{wheels}/",
        "vllm_pip_trusted_host": urlsplit(wheels).hostname,
        # The hash-locked engine set the driver fills (wheelhouse.fill(..., name="engine")).
        "vllm_pip_requirements": f"{wheels}/{LOCAL_ENGINE_LOCK}",
        "model_weights_pip_find_links": f"{wheels}/",
        "model_weights_boto3_package": WEIGHTS_TOOLS[0],
        "model_weights_pip_trusted_host": urlsplit(wheels).hostname,
    }
    # LocalHosts(state_dir/hosts).ssh_keypair() keeps it in hosts/ssh/.
    candidates = [outputs.get("ssh_private_key"), str(state_dir(stand.stack) / "hosts" / "ssh" / "id_ed25519")]
    key = next((k for k in candidates if k and Path(k).is_file()), None)
    if key:
        variables["ansible_ssh_private_key_file"] = key
    return variables


def _vendor_image_driver(stand: Stand) -> str | None:
    if not stand.is_cloud or stand.hosts.engine.device == "cpu":
        return None
    from infra.config.checks import resolve_offer

    offer = resolve_offer(stand)
    return offer.vendor_image_driver if offer else None


def bastion_of(stand: Stand, hosts: list[StandHost]) -> StandHost | None:
    """Cloud hosts without a public address are reached through the edge host."""
    if not stand.is_cloud:
        return None
    return next((h for h in hosts if "edge" in h.roles and h.public_address), None)


def host_vars(stand: Stand, host: StandHost, bastion: StandHost | None = None) -> dict:
    """Variables of one host: how to reach it, its addresses, its ports, its GPUs."""
    variables = {
        "ansible_host": host.address,
        "ansible_user": host.ssh_user,
        "private_address": host.private_address,
        "public_address": host.public_address,
        "stand_roles": list(host.roles),
        "vllm_listen_address": host.private_address,
        "common_firewall_rules": firewall_rules(stand, host),
        "nvidia_driver_expected_gpus": host.gpus,
    }
    ssh_args = []
    if bastion is not None and not host.public_address and bastion.name != host.name:
        ssh_args.append(f"-o ProxyJump={bastion.ssh_user}@{bastion.public_address}")
    if stand.target == "local":
        # Local hosts are re-created with new host keys on every `stand up`, on a private bridge.
        ssh_args += ["-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null"]
    if ssh_args:
        variables["ansible_ssh_common_args"] = " ".join(ssh_args)
    return variables


def firewall_rules(stand: Stand, host: StandHost) -> list[dict]:
    """The ports this host opens (SSH is the common role's, from common_admin_cidrs)."""
    subnet = [str(stand.network.subnet_cidr)]
    rules = []
    if "engine" in host.roles:
        rules.append({"port": stand.engine.port, "proto": "tcp", "sources": subnet,
                      "comment": "vLLM API and /metrics, inside the stand"})
    if "edge" in host.roles:
        rules.append({"port": HTTPS_PORT, "proto": "tcp", "sources": [str(c) for c in stand.network.public_cidrs],
                      "comment": "gateway (HTTPS)"})
        rules.append({"port": stand.gateway.port, "proto": "tcp", "sources": subnet,
                      "comment": "gateway, inside the stand"})
    return rules
