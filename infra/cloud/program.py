"""The Pulumi program of a stand: Stand model in, components built, stack outputs returned.

``build`` is called by ``__main__`` (``pulumi up``) and by ``plan`` (offline, under mocks). Its
return value is the stack outputs contract (infra/config/contract.py) the inventory reads.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import catalog
from infra.cloud import common
from infra.cloud.fallback import fallback_endpoint
from infra.cloud.hosts import Hosts, HostsArgs, Machine
from infra.cloud.network import Network, NetworkArgs
from infra.cloud.onprem import ExistingHosts, ExistingHostsArgs
from infra.cloud.providers import provider_for
from infra.cloud.secret_refs import SecretSource
from infra.cloud.security import SecurityArgs, SecurityGroups
from infra.cloud.settings import CloudSettings
from infra.cloud.storage import Mirror, MirrorArgs
from infra.config.checks import resolve_offer
from infra.config.model import Stand
from infra.config.outputs import model_outputs
from infra.ingress import groups


def build(stand: Stand, secrets: SecretSource, settings: CloudSettings) -> dict[str, Any]:
    """Create the stand's resources; return the stack outputs (values may be Outputs)."""
    outputs: dict[str, Any] = {"stand": stand.stack, "target": stand.target,
                               "fallback_endpoint": fallback_endpoint(stand.gateway.fallback_stack, settings.organization)}
    if not stand.is_cloud:
        return {**outputs, **_existing(stand)}
    offer = resolve_offer(stand)
    if offer is None:  # load_stand's checks refuse such a stand; a hand-built one may slip through
        raise ValueError(f"{stand.target} has no offer for {stand.hosts.engine.gpu} x{stand.hosts.engine.gpus_per_host}")
    on_k8s = stand.kubernetes.enabled
    zone = common.zone(stand)
    labels = common.labels(stand.stack)
    network = Network(stand.stack, NetworkArgs(stand.target, stand.stack, str(stand.network.subnet_cidr), zone,
                                               labels, settings.external_network_id))
    security = SecurityGroups(stand.stack, SecurityArgs(stand.target, stand.stack, network.network_id, groups(stand),
                                                        labels))
    mirror = Mirror(stand.stack, MirrorArgs(stand.target, stand.stack, stand.mirror_bucket,
                                            common.mirror_endpoint(stand), labels))
    # On Kubernetes the engines are pods; the edge host stays for monitoring and as the SSH bastion.
    machines = [m for m in machines_of(stand, offer, settings) if not (on_k8s and m.host.has("engine"))]
    hosts = Hosts(stand.stack, HostsArgs(
        stand.target, stand.stack, zone, machines, stand.hosts.ssh_user, stand.hosts.ssh_public_keys,
        network.network_id, network.subnet_id, security.ids, labels,
        floating_ip_pool=network.external_network_name, after=[network]))
    edge = next(m for m in machines if m.host.has("edge"))
    endpoint = pulumi.Output.concat("https://", hosts.public_addresses[edge.name])
    if on_k8s:
        from infra.cloud.k8s_stand import deploy_kubernetes  # pulls in the Kubernetes SDKs only when needed

        endpoint = deploy_kubernetes(stand, offer, settings, secrets, network, security, mirror, outputs["fallback_endpoint"])
    return {**outputs, "hosts": hosts.hosts, "gateway_endpoint": endpoint, "mirror": mirror.as_output()}


def machines_of(stand: Stand, offer: catalog.Offer, settings: CloudSettings) -> list[Machine]:
    """The cloud machines of the stand: its planned hosts, with what renting each one takes."""
    cloud = common.cloud_defaults(stand)
    provider = provider_for(stand.target)
    engine, edge = stand.hosts.engine, stand.hosts.edge
    out = []
    for host in stand.planned_hosts():
        if host.has("engine"):
            gpus = engine.gpus_per_host
            out.append(Machine(
                host, offer.cores_per_gpu * gpus, offer.memory_gb_per_gpu * gpus, common.engine_disk_gb(stand),
                provider.image(stand, settings, vendor_driver=bool(offer.vendor_image_driver)), public=False,
                platform=offer.platform, flavor=offer.flavor(gpus) if offer.flavor_prefix else None,
                gpu_cluster=bool(offer.gpu_cluster_from and gpus >= offer.gpu_cluster_from)))
        else:
            out.append(Machine(host, edge.cores, edge.memory_gb, edge.disk_gb,
                               provider.image(stand, settings, vendor_driver=False), public=True,
                               platform=cloud.edge_platform, flavor=cloud.edge_flavor))
    return out


def _existing(stand: Stand) -> dict[str, Any]:
    """onprem and local: nothing is created; the hosts and the configured mirror are exported."""
    existing = ExistingHosts(stand.stack, ExistingHostsArgs(stand.planned_hosts()))
    derived = model_outputs(stand, fallback_endpoint=None).as_json()  # the StackReference gives the fallback
    return {"hosts": existing.hosts, "gateway_endpoint": derived["gateway_endpoint"], "mirror": derived["mirror"]}
