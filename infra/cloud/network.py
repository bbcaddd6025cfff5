"""The stand's private network: Yandex VPC + subnet (+ NAT gateway), or OpenStack network + subnet + router."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from infra.cloud import yandex_sdk as yc


@dataclass(frozen=True)
class NetworkArgs:
    target: str  # yandex | selectel | vk
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
        child = pulumi.ResourceOptions(parent=self)
        self.external_network_id = self.external_network_name = None
        if args.target == "yandex":
            self._yandex(args, child)
        else:
            self._openstack(args, child)
        self.register_outputs({"network_id": self.network_id, "subnet_id": self.subnet_id})

    def _yandex(self, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        net = yc.VpcNetwork(args.name, name=args.name, labels=args.labels, opts=child)
        # Only the edge host has a public address; engines reach the mirror and apt through NAT.
        gateway = yc.VpcGateway(f"{args.name}-nat", name=f"{args.name}-nat", labels=args.labels,
                                shared_egress_gateway={}, opts=child)
        routes = yc.VpcRouteTable(f"{args.name}-egress", name=f"{args.name}-egress", network_id=net.id,
                                  labels=args.labels,
                                  static_routes=[{"destination_prefix": "0.0.0.0/0", "gateway_id": gateway.id}],
                                  opts=child)
        subnet = yc.VpcSubnet(f"{args.name}-subnet", name=f"{args.name}-subnet", network_id=net.id,
                              zone=args.zone, v4_cidr_blocks=[args.cidr], route_table_id=routes.id,
                              labels=args.labels, opts=child)
        self.network_id, self.subnet_id = net.id, subnet.id

    def _openstack(self, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        tags = [f"{k}={v}" for k, v in args.labels.items()]
        lookup = ({"network_id": args.external_network_id} if args.external_network_id
                  else {"external": True})  # the project's one external network
        external = openstack.networking.get_network_output(**lookup, opts=pulumi.InvokeOutputOptions(parent=self))
        net = openstack.networking.Network(args.name, name=args.name, admin_state_up=True, tags=tags, opts=child)
        subnet = openstack.networking.Subnet(f"{args.name}-subnet", name=f"{args.name}-subnet", network_id=net.id,
                                             cidr=args.cidr, ip_version=4, enable_dhcp=True, tags=tags, opts=child)
        # The router's SNAT gives engines egress without public addresses.
        router = openstack.networking.Router(f"{args.name}-router", name=f"{args.name}-router",
                                             external_network_id=external.id, tags=tags, opts=child)
        openstack.networking.RouterInterface(f"{args.name}-router-if", router_id=router.id,
                                             subnet_id=subnet.id, opts=child)
        self.network_id, self.subnet_id = net.id, subnet.id
        self.external_network_id, self.external_network_name = external.id, external.name
