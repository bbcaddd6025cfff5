"""The stand's private network: a network, a subnet, and egress through NAT (the cloud decides how)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.cloud.providers import provider_for


@dataclass(frozen=True)
class NetworkArgs:
    target: str  # a cloud of infra.cloud.providers
    name: str
    cidr: str
    zone: str
    labels: dict[str, str]
    external_network_id: str | None  # OpenStack only; looked up when None


class Network(pulumi.ComponentResource):
    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    external_network_id: pulumi.Output[str] | None  # OpenStack: the router's uplink (floating IPs, Magnum)
    external_network_name: pulumi.Output[str] | None  # OpenStack: the floating IP pool

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:Network", name, None, opts)
        ids = provider_for(args.target).network(self, args)
        self.network_id, self.subnet_id = ids.network_id, ids.subnet_id
        self.external_network_id, self.external_network_name = ids.external_network_id, ids.external_network_name
        self.register_outputs({"network_id": self.network_id, "subnet_id": self.subnet_id})
