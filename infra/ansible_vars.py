"""The one mapping from the Stand model and a stack's outputs to the roles' variables.

    outputs = read_outputs(stand)                          # infra.config.outputs
    group_vars(stand, resolver, outputs)                   # the stand's group
    host_vars(stand, host, outputs)                        # one host

Variable names are the roles' own (roles/*/defaults/main.yml): common_*, model_weights_*, vllm_*,
nvidia_driver_*. A value the model decides is always set here, so a role default never decides it.
``stand_*`` variables describe the stand for roles that come later (gateway, monitoring).

Secrets come from a resolver, ``(path, ref) -> str``, with ``path`` a secret's config path
(``gateway.consumers[0].key``) or a secret stack output (``outputs.mirror.secret_key``, ``ref``
None). ``infra.config.secrets.eager_resolver`` gives values (the driver, tests);
``lookup_resolver`` gives a lookup that resolves the value only when a task uses it, so secrets
are never printed by ``ansible-inventory`` nor written anywhere by the inventory.
"""

from __future__ import annotations

from infra import catalog, engine, ingress
from infra.config.contract import Host, StackOutputs
from infra.config.loader import STACKS_DIR
from infra.config.model import Stand
from infra.config.secrets import SECRET_PATH, SecretResolver, mirror_key_paths, secret_paths

LOOKUP = "llm_stands_secret"  # plugins/lookup/llm_stands_secret.py
# Where a VM's engine finds its weights: the model_weights role keeps <root>/<name>/current.
MODEL_ROOT = "/srv/models"


def lookup_resolver(stand: Stand) -> SecretResolver:
    """A template that resolves the secret when a task uses it. The template is built only from the
    secret's config path (checked against SECRET_PATH); which stack it belongs to is data, in the
    ``stand_secret_source`` variable, never spliced into the template."""

    def resolver(path: str, _ref) -> str:
        if not SECRET_PATH.match(path):
            raise ValueError(f"{path!r} is not a secret path")
        return "{{ lookup('" + LOOKUP + "', '" + path + "', stack=stand_secret_source) }}"

    return resolver


def secret_source(stand: Stand) -> str:
    """What the lookup is told to load: the stack's name, or its file when it lives outside stacks/."""
    source = stand.source_file
    return str(source) if source is not None and source.parent != STACKS_DIR else stand.stack


def _target(stand: Stand):
    """The module of a target that adds variables of its own (the local stand), or None."""
    if stand.target == "local":
        from infra.local import stand as local

        return local
    return None


def model_path(stand: Stand) -> str:
    return f"{MODEL_ROOT}/{stand.model.served_name}/current"


def group_vars(stand: Stand, secret: SecretResolver, outputs: StackOutputs) -> dict:
    """Variables of the stand's group: everything the model decides for all its hosts."""
    eng = stand.hosts.engine
    cat = catalog.load()
    storage_region = cat.clouds[stand.target].storage_region if stand.target in cat.clouds else "us-east-1"
    refs = secret_paths(stand)
    access, secret_key = mirror_key_paths(stand)
    variables = {
        "stand_stack": stand.stack,
        "stand_target": stand.target,
        "stand_secret_source": secret_source(stand),
        "stand_subnet_cidr": str(stand.network.subnet_cidr),
        "stand_public_cidrs": [str(c) for c in stand.network.public_cidrs],
        "stand_gateway_port": stand.gateway.port,
        "stand_gateway_endpoint": outputs.gateway_endpoint,
        "stand_fallback_endpoint": outputs.fallback_endpoint,
        "stand_engine_endpoints": [f"http://{h.private_address}:{stand.engine.port}" for h in outputs.with_role("engine")],
        # model_weights
        "model_weights_source": stand.model.source,
        "model_weights_name": stand.model.served_name,
        "model_weights_root": MODEL_ROOT,
        "model_weights_s3_endpoint": outputs.mirror.endpoint or "",
        "model_weights_s3_region": storage_region,
        "model_weights_s3_access_key": secret(access, refs.get(access)),
        "model_weights_s3_secret_key": secret(secret_key, refs.get(secret_key)),
        # vllm: the command line and environment are data (infra/engine.py); these are what the
        # role itself checks (versions, the GPU count, the readiness URL, the weights marker).
        "vllm_device": eng.device,
        "vllm_version": stand.engine.version,
        "vllm_served_model_name": stand.model.served_name,
        "vllm_tensor_parallel_size": stand.tensor_parallel_size,
        "vllm_port": stand.engine.port,
        "vllm_model_path": model_path(stand),
        "vllm_env": engine.environment(stand),
        "vllm_api_key": secret("engine.api_key", stand.engine.api_key),
        # nvidia_driver
        "nvidia_driver_expected_arch": cat.gpus[eng.gpu].arch if eng.gpu in cat.gpus else None,
        "nvidia_driver_vendor_image_driver": _vendor_image_driver(stand),
    }
    target = _target(stand)
    if target is not None:
        variables.update(target.group_vars(stand, outputs))
    return variables


def _vendor_image_driver(stand: Stand) -> str | None:
    if not stand.is_cloud or stand.hosts.engine.device == "cpu":
        return None
    from infra.config.checks import resolve_offer

    offer = resolve_offer(stand)
    return offer.vendor_image_driver if offer else None


def bastion_of(stand: Stand, outputs: StackOutputs) -> Host | None:
    """Cloud hosts without a public address are reached through the edge host."""
    edge = outputs.edge
    return edge if stand.is_cloud and edge is not None and edge.public_address else None


def host_vars(stand: Stand, host: Host, outputs: StackOutputs) -> dict:
    """Variables of one host: how to reach it, its addresses, its firewall, its engine, its GPUs."""
    ssh_sources, rules = ingress.host_rules(stand, host)
    variables = {
        "ansible_host": str(host.address),
        "ansible_user": host.ssh_user,
        "private_address": str(host.private_address),
        "public_address": str(host.public_address) if host.public_address else None,
        "stand_roles": list(host.roles),
        "common_admin_cidrs": ssh_sources,
        "common_firewall_rules": rules,
        "nvidia_driver_expected_gpus": host.gpus,
    }
    if host.has("engine"):
        variables["vllm_listen_address"] = str(host.private_address)
        variables["vllm_args"] = engine.command(stand, model=model_path(stand), host=str(host.private_address))
    ssh_args = []
    bastion = bastion_of(stand, outputs)
    if bastion is not None and not host.public_address and bastion.name != host.name:
        ssh_args.append(f"-o ProxyJump={bastion.ssh_user}@{bastion.public_address}")
    target = _target(stand)
    if target is not None:
        ssh_args += target.ssh_args(stand)
    if ssh_args:
        variables["ansible_ssh_common_args"] = " ".join(ssh_args)
    return variables
