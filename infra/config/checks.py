"""Checks across fields and against the catalogs; every problem is collected, none stops the others."""

from __future__ import annotations

from infra import PROJECT, catalog, sizing
from infra.config.errors import Problem
from infra.config.model import Stand


def check_stand(stand: Stand) -> list[Problem]:
    problems: list[Problem] = []
    for check in (_target_shape, _gpu_and_offer, _tensor_parallel, _fit, _licence, _sources, _fallback):
        problems.extend(check(stand))
    return problems


def field(path: str) -> str:
    return f"{PROJECT}:{path}"


def _target_shape(stand: Stand) -> list[Problem]:
    problems = []
    if stand.target == "onprem":
        if not stand.hosts.existing:
            problems.append(Problem(field("hosts.existing"), "an onprem stand lists its existing hosts",
                                    "add hosts with name, address, ssh_user, roles and gpus"))
        elif not any("engine" in h.roles for h in stand.hosts.existing):
            problems.append(Problem(field("hosts.existing"), "no host has the engine role", "give one host roles: [engine]"))
        if not any("edge" in h.roles for h in stand.hosts.existing) and stand.hosts.existing:
            problems.append(Problem(field("hosts.existing"), "no host has the edge role (gateway, monitoring)",
                                    "add roles: [edge, monitoring] to one host"))
        for i, host in enumerate(stand.hosts.existing):
            engine = stand.hosts.engine
            if "engine" in host.roles and (host.gpu or "cpu") != engine.gpu:
                problems.append(Problem(field(f"hosts.existing.{i}.gpu"), f"{host.name} has {host.gpu or 'no GPU'}, "
                                        f"hosts.engine.gpu says {engine.gpu}", "make them agree"))
            elif "engine" in host.roles and engine.device == "gpu" and host.gpus < engine.gpus_per_host:
                problems.append(Problem(field(f"hosts.existing.{i}.gpus"), f"{host.name} has {host.gpus} GPUs, "
                                        f"hosts.engine.gpus_per_host is {engine.gpus_per_host}",
                                        "lower gpus_per_host or fix the host's gpus"))
    elif stand.hosts.existing:
        problems.append(Problem(field("hosts.existing"), f"existing hosts are for target onprem, not {stand.target}",
                                "remove hosts.existing or set target: onprem"))
    if stand.hosts.engine.device == "cpu":
        if stand.target not in ("local", "onprem"):
            problems.append(Problem(field("hosts.engine.gpu"), f"a CPU engine is for local or onprem, not {stand.target}",
                                    "pick a GPU type from infra/catalogs/gpus.yaml"))
        if stand.hosts.engine.memory_gb is None:
            problems.append(Problem(field("hosts.engine.memory_gb"), "a CPU engine needs the RAM it may use",
                                    "set hosts.engine.memory_gb"))
    elif stand.target == "local":
        problems.append(Problem(field("hosts.engine.gpu"), "the local stand has no GPU", "set hosts.engine.gpu: cpu"))
    if stand.kubernetes.enabled and not stand.is_cloud:
        problems.append(Problem(field("kubernetes.enabled"), f"managed Kubernetes needs a cloud target, not {stand.target}",
                                "set kubernetes.enabled: false"))
    if stand.target == "local":
        bridge = stand.network.subnet_cidr.network_address + 1
        if not any(bridge in c for c in stand.network.admin_cidrs):
            problems.append(Problem(field("network.admin_cidrs"), f"the control machine ({bridge}) could not reach SSH",
                                    f"include {stand.network.subnet_cidr} in admin_cidrs"))
    return problems


def _gpu_and_offer(stand: Stand) -> list[Problem]:
    cat = catalog.load()
    engine = stand.hosts.engine
    gpus = {h.gpu for h in stand.hosts.existing if h.gpu} | {engine.gpu}
    unknown = sorted(g for g in gpus if g != "cpu" and g not in cat.gpus)
    if unknown:
        return [Problem(field("hosts.engine.gpu"), f"unknown GPU type {', '.join(unknown)}",
                        f"use one of: {', '.join(cat.gpus)}, or cpu")]
    if not stand.is_cloud:
        return []
    offer = resolve_offer(stand)
    if offer is not None:
        return []
    if engine.offer:
        chosen = cat.offer(engine.offer)
        if chosen is None or chosen.cloud != stand.target:
            ids = ", ".join(o.id for o in cat.offers_for(stand.target))
            return [Problem(field("hosts.engine.offer"), f"no offer {engine.offer} on {stand.target}", f"use one of: {ids}")]
        return [Problem(field("hosts.engine.offer"), f"{chosen.id} has {chosen.gpu} in groups of {chosen.gpus}",
                        f"set hosts.engine.gpu: {chosen.gpu} and gpus_per_host to one of {chosen.gpus}")]
    have = ", ".join(f"{o.gpu} x{o.gpus}" for o in cat.offers_for(stand.target)) or "none"
    return [Problem(field("hosts.engine.gpu"), f"{stand.target} rents no {engine.gpu} x{engine.gpus_per_host} VM",
                    f"pick one that {stand.target} offers: {have}")]


def resolve_offer(stand: Stand):
    """The cloud offer the engine hosts rent: the named one, else the first matching GPU type and count."""
    cat = catalog.load()
    engine = stand.hosts.engine
    candidates = [cat.offer(engine.offer)] if engine.offer else cat.offers_for(stand.target, engine.gpu)
    return next((o for o in candidates if o and o.cloud == stand.target and o.gpu == engine.gpu
                 and engine.gpus_per_host in o.gpus), None)


def _tensor_parallel(stand: Stand) -> list[Problem]:
    tp, per_host = stand.tensor_parallel_size, stand.hosts.engine.gpus_per_host
    if stand.hosts.engine.device == "cpu":
        return [] if tp == 1 else [Problem(field("engine.tensor_parallel_size"), "a CPU engine runs one shard",
                                           "remove engine.tensor_parallel_size")]
    if tp not in sizing.TP_SIZES or per_host % tp:
        return [Problem(field("engine.tensor_parallel_size"), f"{tp} does not split {per_host} GPUs per host",
                        f"use a power of two that divides {per_host}")]
    return []


def fit(stand: Stand) -> tuple[sizing.Requirement, float]:
    """The model's requirement and the usable memory of one tensor-parallel group."""
    cat = catalog.load()
    engine = stand.hosts.engine
    req = sizing.requirement(stand.model.params_b, stand.model.precision)
    if engine.device == "cpu":
        return req, sizing.usable_gb(engine.memory_gb or 0, 1, stand.engine.gpu_memory_utilization)
    memory = cat.gpus[engine.gpu].memory_gb if engine.gpu in cat.gpus else 0
    return req, sizing.usable_gb(memory, stand.tensor_parallel_size, stand.engine.gpu_memory_utilization)


def _fit(stand: Stand) -> list[Problem]:
    if stand.hosts.engine.gpu != "cpu" and stand.hosts.engine.gpu not in catalog.load().gpus:
        return []  # reported as an unknown GPU type
    req, usable = fit(stand)
    if req.total_gb <= usable:
        return []
    options = sizing.gpu_options(req, stand.engine.gpu_memory_utilization)[:3]
    hint = "; ".join(f"{o.count} x {o.gpu}" for o in options) or "a smaller model or precision"
    return [Problem(field("model"), f"{stand.model.served_name} at {stand.model.precision} needs "
                    f"{sizing.fmt_gb(req.total_gb)} GB with KV cache, the tensor-parallel group has "
                    f"{sizing.fmt_gb(usable)} GB", f"use {hint}, or a lower precision")]


def _licence(stand: Stand) -> list[Problem]:
    from infra.licence import verdict

    cat = catalog.load()
    problems = []
    model = stand.model
    family = cat.families.get(model.family or "")
    if model.family and family is None:
        problems.append(Problem(field("model.family"), f"unknown model family {model.family}",
                                f"use one of {', '.join(cat.families)} (infra/catalogs/model_families.yaml), or remove it"))
    if family and family.licence != model.licence:
        problems.append(Problem(field("model.licence"), f"the {model.family} family is licensed {family.licence}",
                                f"set model.licence: {family.licence}"))
    v = verdict(model, stand.stack)
    if not v.allowed:
        kind = "restricted" if v.known else "unknown"
        problems.append(Problem(field("model.licence"), f"{kind} licence {model.licence} in {stand.stack} ({v.note})",
                                f"read it, then set model.licence_accepted: {model.licence}"))
    elif model.licence_accepted and model.licence_accepted != model.licence:
        problems.append(Problem(field("model.licence_accepted"), f"accepts {model.licence_accepted}, the model is {model.licence}",
                                f"set it to {model.licence} or remove it"))
    return problems


def _sources(stand: Stand) -> list[Problem]:
    keys = stand.artifacts.access_key, stand.artifacts.secret_key
    if stand.target == "onprem" and None in keys:
        return [Problem(field("artifacts.access_key"), "an onprem mirror needs its S3 access_key and secret_key",
                        "set both, e.g. {env: MIRROR_ACCESS_KEY}, or as Pulumi secrets")]
    if stand.target != "onprem" and keys != (None, None):
        who = "the local S3 server generates" if stand.target == "local" else "Pulumi creates"
        return [Problem(field("artifacts.access_key"), f"{who} the mirror's keys for a {stand.target} stand",
                        "remove artifacts.access_key and artifacts.secret_key")]
    if stand.artifacts.offline and stand.model.source.startswith("hf://"):
        return [Problem(field("model.source"), "offline hosts cannot download from Hugging Face",
                        f"mirror it (stand mirror {stand.stack} DIR) and use s3://{stand.mirror_bucket}/<prefix>, "
                        "or set artifacts.offline: false")]
    return []


def _fallback(stand: Stand) -> list[Problem]:
    from infra.config.loader import STACKS_DIR

    name = stand.gateway.fallback_stack
    if name is None:
        return []
    if name == stand.stack:
        return [Problem(field("gateway.fallback_stack"), "a stand cannot fail over to itself", "name another stack")]
    if not (STACKS_DIR / f"Pulumi.{name}.yaml").exists():
        return [Problem(field("gateway.fallback_stack"), f"no stack {name}", f"create stacks/Pulumi.{name}.yaml")]
    return []
