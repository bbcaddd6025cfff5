"""One module per cloud behind one interface. The per-concern components (network, security groups,
hosts, mirror, Kubernetes) never branch on the target: they ask ``provider_for(target)``.

Adding a cloud is one module here plus its catalog data (infra/catalogs/offers.yaml) and a line in
``_MODULES``. ``yandex.py`` stays the only importer of ``infra.cloud.yandex_sdk``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

import pulumi

if TYPE_CHECKING:
    from infra.cloud.hosts import HostsArgs, Image
    from infra.cloud.k8s_cluster import ClusterArgs
    from infra.cloud.network import NetworkArgs
    from infra.cloud.settings import CloudSettings
    from infra.cloud.storage import MirrorArgs
    from infra.config.model import Stand
    from infra.ingress import Ingress

_MODULES = {"yandex": "infra.cloud.providers.yandex", "selectel": "infra.cloud.providers.openstack",
            "vk": "infra.cloud.providers.openstack"}


class NetworkIds(Protocol):
    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    external_network_id: pulumi.Output[str] | None  # OpenStack: the router's uplink (floating IPs, Magnum)
    external_network_name: pulumi.Output[str] | None  # OpenStack: the floating IP pool


class Provider(Protocol):
    """What a cloud implements. ``parent`` is the calling component: every resource is its child."""

    def network(self, parent: pulumi.Resource, args: NetworkArgs) -> NetworkIds: ...

    def security_group(self, parent: pulumi.Resource, name: str, group: str, rules: list[Ingress],
                       network_id: pulumi.Input[str], labels: dict[str, str]) -> pulumi.Output[str]: ...

    def image(self, stand: Stand, settings: CloudSettings, *, vendor_driver: bool) -> Image: ...

    def machines(self, parent: pulumi.Resource, args: HostsArgs) -> dict[str, pulumi.Output[str] | None]:
        """Create every machine; return each one's public address (None for private hosts)."""
        ...

    def mirror(self, parent: pulumi.Resource, args: MirrorArgs) -> tuple[pulumi.Output[str], pulumi.Output[str],
                                                                          pulumi.Output[str]]:
        """(bucket name, access key, secret key) of a private, versioned bucket with its own key."""
        ...

    def cluster_settings(self, stand: Stand, settings: CloudSettings, network: NetworkIds) -> dict:
        """The cloud's own fields of ClusterArgs."""
        ...

    def cluster(self, parent: pulumi.Resource, args: ClusterArgs) -> pulumi.Output[str]:
        """A managed Kubernetes cluster with a GPU node group; returns the kubeconfig (raw)."""
        ...


def provider_for(target: str) -> Provider:
    if target not in _MODULES:
        raise ValueError(f"{target} is not a cloud this program provisions (one of {', '.join(_MODULES)})")
    return importlib.import_module(_MODULES[target]).provider()
