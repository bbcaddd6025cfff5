"""The Pulumi program of a stand: Stand model in, components built, stack outputs returned.

``build`` is called by ``__main__`` (``pulumi up``) and by ``plan`` (offline, under mocks). Its
return value is the output contract the Ansible inventory reads:

    stand, target, hosts[{name, roles, private_address, public_address, gpus, gpu, ssh_user}],
    gateway_endpoint, mirror{bucket, endpoint, access_key, secret_key}, fallback_endpoint
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import catalog
from infra.cloud import common
from infra.cloud.fallback import fallback_endpoint
from infra.cloud.hosts import Hosts, HostsArgs, Image, Machine
from infra.cloud.network import Network, NetworkArgs
from infra.cloud.onprem import ExistingHosts, ExistingHostsArgs
from infra.cloud.secret_refs import SecretSource
from infra.cloud.security import SecurityArgs, SecurityGroups, stand_rules
from infra.cloud.settings import CloudSettings
from infra.cloud.storage import Mirror, MirrorArgs
from infra.config.checks import resolve_offer
from infra.config.model import Stand


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
    groups = SecurityGroups(stand.stack, SecurityArgs(
        stand.target, stand.stack, network.network_id,
        stand_rules(stand, engines_as_vms=not on_k8s, yandex_kubernetes=on_k8s and stand.target == "yandex"), labels))
    mirror = Mirror(stand.stack, MirrorArgs(stand.target, stand.stack, stand.mirror_bucket,
                                            common.mirror_endpoint(stand), labels))
    # On Kubernetes the engines are pods; the edge host stays for monitoring and as the SSH bastion.
    machines = [m for m in machines_of(stand, offer, settings) if not (on_k8s and m.role == "engine")]
    hosts = Hosts(stand.stack, HostsArgs(
        stand.target, stand.stack, zone, machines, stand.hosts.ssh_user, stand.hosts.ssh_public_keys,
        network.network_id, network.subnet_id, groups.ids, labels,
        floating_ip_pool=network.external_network_name, after=[network]))
    edge = next(m for m in machines if m.role == "edge")
    endpoint = pulumi.Output.concat("https://", hosts.public_addresses[edge.name])
    if on_k8s:
        from infra.cloud.k8s_stand import deploy_kubernetes  # pulls in the Kubernetes SDKs only when needed

        endpoint = deploy_kubernetes(stand, offer, settings, secrets, network, groups, mirror, outputs["fallback_endpoint"])
    return {**outputs, "hosts": hosts.hosts, "gateway_endpoint": endpoint, "mirror": mirror.as_output()}


def machines_of(stand: Stand, offer: catalog.Offer, settings: CloudSettings) -> list[Machine]:
    """The cloud machines of the stand, named and addressed by ``stand.planned_hosts()``."""
    cloud = common.cloud_defaults(stand)
    engine, edge = stand.hosts.engine, stand.hosts.edge
    yandex = stand.target == "yandex"

    def image(vendor: bool) -> Image:
        if yandex:
            # Vendor-image platforms boot only the vendor's image (its driver cannot be changed).
            return Image(family=settings.vendor_image_family if vendor else (stand.hosts.image or settings.image_family))
        return Image(name=stand.hosts.image) if stand.hosts.image else Image(name_regex=settings.openstack_image_regex)

    out = []
    for host in stand.planned_hosts():
        if "engine" in host.roles:
            gpus = engine.gpus_per_host
            out.append(Machine(
                host.name, "engine", host.roles, str(host.address), offer.cores_per_gpu * gpus,
                offer.memory_gb_per_gpu * gpus, common.engine_disk_gb(stand), gpus, engine.gpu,
                image(bool(offer.vendor_image_driver)), public=False, platform=offer.platform,
                flavor=offer.flavor(gpus) if offer.flavor_prefix else None,
                gpu_cluster=bool(offer.gpu_cluster_from and gpus >= offer.gpu_cluster_from)))
        else:
            out.append(Machine(host.name, "edge", host.roles, str(host.address), edge.cores, edge.memory_gb,
                               edge.disk_gb, 0, None, image(False), public=True,
                               platform=cloud.edge_platform, flavor=cloud.edge_flavor))
    return out


def _existing(stand: Stand) -> dict[str, Any]:
    """onprem and local: nothing is created; the hosts and the configured mirror are exported."""
    hosts = stand.planned_hosts()
    existing = ExistingHosts(stand.stack, ExistingHostsArgs(hosts))
    edge = next((h for h in hosts if "edge" in h.roles), None)
    return {"hosts": existing.hosts,
            "gateway_endpoint": f"https://{edge.address}" if edge else None,
            # The mirror is the team's own S3 (artifacts.endpoint); its keys are not Pulumi's to hand out.
            "mirror": {"bucket": stand.mirror_bucket, "endpoint": common.mirror_endpoint(stand),
                       "access_key": None, "secret_key": None}}
