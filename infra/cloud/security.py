"""Security groups. The whole ingress policy of a stand is written once, in ``stand_rules``:

- 443 from ``network.public_cidrs`` to the edge host only;
- 22 from ``network.admin_cidrs`` (engines also from the edge host, the SSH bastion: they have no
  public address);
- the engine, gateway and metrics ports only from the stand's subnet.
Nothing else comes in. Egress is open (apt, the mirror, the fallback stand).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from infra.cloud import common
from infra.cloud import yandex_sdk as yc
from infra.config.model import Stand

# Managed Kubernetes on Yandex: pod and service ranges set on the cluster, so rules can name them.
K8S_POD_CIDR = "10.112.0.0/16"
K8S_SERVICE_CIDR = "10.96.0.0/16"
# The gateway Service's fixed NodePort: Yandex's network load balancer keeps client addresses, so
# its 443 reaches the nodes on this port from the public CIDRs; no other node port is opened.
GATEWAY_NODE_PORT = 30443
K8S_API_PORTS = (443, 6443)


@dataclass(frozen=True)
class Rule:
    description: str
    from_port: int
    to_port: int
    sources: tuple[str, ...] = ()  # IPv4 CIDRs
    predefined: str | None = None  # Yandex: self_security_group | loadbalancer_healthchecks
    protocol: str = "TCP"  # TCP | ANY


def _port(description: str, port: int, sources) -> Rule:
    return Rule(description, port, port, tuple(str(s) for s in sources))


def stand_rules(stand: Stand, *, engines_as_vms: bool, yandex_kubernetes: bool) -> dict[str, list[Rule]]:
    """Ingress rules per group: edge, engine (VM stands), k8s-master and k8s-nodes (Yandex MK8s)."""
    net = stand.network
    subnet = (net.subnet_cidr,)
    edge = next(h for h in stand.planned_hosts() if "edge" in h.roles)
    bastion = f"{edge.address}/32"
    groups = {"edge": [
        _port("gateway (nginx, TLS)", common.HTTPS_PORT, net.public_cidrs),
        _port("ssh from admin networks", common.SSH_PORT, net.admin_cidrs),
        _port("gateway internal port", stand.gateway.port, subnet),
        _port("node exporter", common.NODE_EXPORTER_PORT, subnet),
    ]}
    if engines_as_vms:
        groups["engine"] = [
            _port("ssh from admin networks and the edge bastion", common.SSH_PORT, (*net.admin_cidrs, bastion)),
            _port("vLLM OpenAI API", stand.engine.port, subnet),
            _port("node exporter", common.NODE_EXPORTER_PORT, subnet),
            _port("DCGM exporter (GPU metrics)", common.DCGM_EXPORTER_PORT, subnet),
        ]
    if yandex_kubernetes:
        groups["k8s-master"] = [_port(f"Kubernetes API {p}", p, (*net.admin_cidrs, *subnet)) for p in K8S_API_PORTS]
        # Attached to the master and every node: what Yandex MK8s needs to run, plus the gateway.
        groups["k8s-nodes"] = [
            Rule("nodes and master to each other", 0, 65535, predefined="self_security_group", protocol="ANY"),
            Rule("pods and services", 0, 65535, (K8S_POD_CIDR, K8S_SERVICE_CIDR), protocol="ANY"),
            Rule("load balancer health checks", 0, 65535, predefined="loadbalancer_healthchecks"),
            _port("gateway Service behind the load balancer's 443", GATEWAY_NODE_PORT, net.public_cidrs),
        ]
    return groups


@dataclass(frozen=True)
class SecurityArgs:
    target: str
    name: str
    network_id: pulumi.Input[str]
    groups: dict[str, list[Rule]]
    labels: dict[str, str]


class SecurityGroups(pulumi.ComponentResource):
    ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:SecurityGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        make = self._yandex if args.target == "yandex" else self._openstack
        self.ids = {role: make(f"{args.name}-{role}", role, rules, args, child) for role, rules in args.groups.items()}
        self.register_outputs({f"{role}_id": sg for role, sg in self.ids.items()})

    @staticmethod
    def _yandex(name: str, role: str, rules: list[Rule], args: SecurityArgs, child) -> pulumi.Output[str]:
        def ingress(rule: Rule) -> dict:
            out = {"protocol": rule.protocol, "description": rule.description,
                   "from_port": rule.from_port, "to_port": rule.to_port}
            if rule.predefined:
                out["predefined_target"] = rule.predefined
            else:
                out["v4_cidr_blocks"] = list(rule.sources)
            return out

        sg = yc.VpcSecurityGroup(
            name, name=name, network_id=args.network_id, labels={**args.labels, "role": role},
            ingresses=[ingress(r) for r in rules],
            egresses=[{"protocol": "ANY", "description": "any egress", "v4_cidr_blocks": ["0.0.0.0/0"],
                       "from_port": 0, "to_port": 65535}],
            opts=child)
        return sg.id

    @staticmethod
    def _openstack(name: str, role: str, rules: list[Rule], args: SecurityArgs, child) -> pulumi.Output[str]:
        tags = [f"{k}={v}" for k, v in {**args.labels, "role": role}.items()]
        # New groups come with egress-allow rules only; ingress is exactly the rules below.
        sg = openstack.networking.SecGroup(name, name=name, description=f"{role} hosts", tags=tags, opts=child)
        for i, rule in enumerate(rules):
            if rule.predefined:
                raise ValueError(f"{rule.predefined} is a Yandex-only rule target")
            for j, source in enumerate(rule.sources):
                openstack.networking.SecGroupRule(
                    f"{name}-{i}-{j}", security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                    protocol=None if rule.protocol == "ANY" else rule.protocol.lower(),
                    port_range_min=rule.from_port, port_range_max=rule.to_port,
                    remote_ip_prefix=source, description=rule.description, opts=child)
        return sg.id
