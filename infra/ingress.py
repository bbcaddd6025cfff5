"""The ingress policy of a stand, written once: port, protocol, allowed sources, which hosts.

Every consumer is made from this one table: the cloud security groups (infra/cloud/security.py),
each host's nftables rules (the ``common`` role's ``common_firewall_rules`` and SSH sources) and
the Kubernetes exposure. A new service adds a row here and nothing else.

``on`` names where a row applies: host roles (``edge``, ``engine``, ``monitoring``) for hosts and
their security groups, or the Yandex Managed Kubernetes groups (``k8s-master``, ``k8s-nodes``).
Nothing else comes in; egress is open (apt, the mirror, the fallback stand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.config.contract import Host
    from infra.config.model import Stand

SSH_PORT = 22
HTTPS_PORT = 443
NODE_EXPORTER_PORT = 9100
DCGM_EXPORTER_PORT = 9400  # NVIDIA's GPU metrics exporter on GPU engine hosts
# Managed Kubernetes on Yandex: pod and service ranges set on the cluster, so rules can name them.
K8S_POD_CIDR = "10.112.0.0/16"
K8S_SERVICE_CIDR = "10.96.0.0/16"
K8S_API_PORTS = (443, 6443)
# The gateway Service's fixed NodePort: Yandex's network load balancer keeps client addresses, so
# its 443 reaches the nodes on this port from the public CIDRs (the Service's
# loadBalancerSourceRanges); no other node port is opened.
GATEWAY_NODE_PORT = 30443


@dataclass(frozen=True)
class Ingress:
    name: str  # stable id: "gateway-https", "ssh", ...
    description: str
    from_port: int
    to_port: int
    sources: tuple[str, ...]  # IPv4 CIDRs
    on: tuple[str, ...]  # host roles, or k8s-master / k8s-nodes
    protocol: str = "tcp"  # tcp | udp | any
    predefined: str | None = None  # Yandex only: self_security_group | loadbalancer_healthchecks

    @property
    def port(self) -> int:
        return self.from_port

    def applies_to(self, roles) -> bool:
        return any(r in self.on for r in roles)


def _row(name: str, description: str, port: int, sources, on: tuple[str, ...]) -> Ingress:
    return Ingress(name, description, port, port, tuple(str(s) for s in sources), on)


def ingress(stand: Stand) -> list[Ingress]:
    """The whole table for a stand. On Kubernetes stands the engines are pods, not hosts."""
    net = stand.network
    subnet = (net.subnet_cidr,)
    on_k8s = stand.kubernetes.enabled
    engines: tuple[str, ...] = () if on_k8s else ("engine",)
    rows = [
        _row("gateway-https", "gateway (nginx, TLS)", HTTPS_PORT, net.public_cidrs, ("edge",)),
        _row("ssh", "ssh from admin networks", SSH_PORT, net.admin_cidrs, ("edge", "monitoring")),
        _row("gateway-internal", "gateway internal port", stand.gateway.port, subnet, ("edge",)),
        _row("node-exporter", "node exporter", NODE_EXPORTER_PORT, subnet, ("edge", "monitoring", *engines)),
    ]
    if engines:
        bastion = _bastion(stand)
        rows += [
            # Engines have no public address on clouds: admins reach them through the edge host.
            _row("ssh-engine", "ssh from admin networks and the edge bastion", SSH_PORT,
                 (*net.admin_cidrs, *bastion), engines),
            _row("engine-api", "vLLM OpenAI API and /metrics, inside the stand", stand.engine.port, subnet, engines),
        ]
        if stand.hosts.engine.device == "gpu":
            rows.append(_row("dcgm-exporter", "DCGM exporter (GPU metrics)", DCGM_EXPORTER_PORT, subnet, engines))
    if on_k8s and stand.target == "yandex":
        rows += [_row(f"k8s-api-{p}", f"Kubernetes API {p}", p, (*net.admin_cidrs, *subnet), ("k8s-master",))
                 for p in K8S_API_PORTS]
        nodes = ("k8s-nodes",)
        rows += [
            Ingress("k8s-self", "nodes and master to each other", 0, 65535, (), nodes, "any", "self_security_group"),
            Ingress("k8s-pods", "pods and services", 0, 65535, (K8S_POD_CIDR, K8S_SERVICE_CIDR), nodes, "any"),
            Ingress("k8s-lb-health", "load balancer health checks", 0, 65535, (), nodes, "tcp",
                    "loadbalancer_healthchecks"),
            # The same public 443 as gateway-https, arriving on the node port behind the load balancer.
            _row("gateway-https-nodeport", "gateway Service behind the load balancer's 443", GATEWAY_NODE_PORT,
                 net.public_cidrs, nodes),
        ]
    return rows


def _bastion(stand: Stand) -> tuple[str, ...]:
    """The edge host's address, from which cloud engines are reached (ProxyJump); none elsewhere."""
    if not stand.is_cloud:
        return ()
    edge = next(h for h in stand.planned_hosts() if h.has("edge"))
    return (f"{edge.private_address}/32",)


def group_of(host: Host) -> str:
    """The security group a cloud host joins: engines share one, the edge (and monitoring) host its own."""
    return "engine" if host.has("engine") else "edge"


def groups(stand: Stand) -> dict[str, list[Ingress]]:
    """Rows per security group: one per kind of host that exists as a VM, plus the k8s groups."""
    table = ingress(stand)
    out: dict[str, list[Ingress]] = {}
    for host in stand.planned_hosts():
        if host.has("engine") and stand.kubernetes.enabled:
            continue  # the engines are pods
        rows = out.setdefault(group_of(host), [])
        rows += [r for r in table if r.applies_to(host.roles) and r not in rows]
    for row in table:
        for group in row.on:
            if group.startswith("k8s-"):
                out.setdefault(group, []).append(row)
    return out


def host_rules(stand: Stand, host: Host) -> tuple[list[str], list[dict]]:
    """(SSH sources, other rules) of one host's firewall, for the ``common`` role."""
    rows = [r for r in ingress(stand) if r.applies_to(host.roles)]
    ssh = list(dict.fromkeys(s for r in rows if r.port == SSH_PORT for s in r.sources))
    rules = [{"port": r.port, "proto": r.protocol, "sources": list(r.sources), "comment": r.description}
             for r in rows if r.port != SSH_PORT]
    return ssh, rules


def row(stand: Stand, name: str) -> Ingress:
    return next(r for r in ingress(stand) if r.name == name)
