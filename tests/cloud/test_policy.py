"""Network policy, for every stack file: what is reachable from where."""

from __future__ import annotations

from ipaddress import IPv4Network

from infra.ingress import (
    DCGM_EXPORTER_PORT,
    GATEWAY_NODE_PORT,
    K8S_API_PORTS,
    K8S_POD_CIDR,
    K8S_SERVICE_CIDR,
    NODE_EXPORTER_PORT,
)

from .policy import ingress, public_addresses, vms

# Cluster-internal sources on Kubernetes nodes (Yandex MK8s needs them open to each other).
K8S_INTERNAL = {"self_security_group", "loadbalancer_healthchecks", K8S_POD_CIDR, K8S_SERVICE_CIDR}


def _edge_bastion(stand) -> str:
    return str(IPv4Network(f"{next(h for h in stand.planned_hosts() if 'edge' in h.roles).address}/32"))


def test_no_port_but_443_is_open_to_the_world(run):
    for rule in ingress(run):
        if rule.from_world:
            # On managed Kubernetes the load balancer's 443 lands on the gateway's one node port.
            allowed = {443} | ({GATEWAY_NODE_PORT} if rule.group == "k8s-nodes" else set())
            assert (rule.from_port, rule.to_port) in {(p, p) for p in allowed}, rule


def test_443_from_the_public_cidrs_reaches_the_edge_only(run):
    public = {str(c) for c in run.stand.network.public_cidrs}
    admin = {str(c) for c in run.stand.network.admin_cidrs} | {str(run.stand.network.subnet_cidr)}
    for rule in ingress(run):
        if not rule.opens(443) or rule.group == "edge":
            continue
        if rule.group == "k8s-nodes":
            assert rule.source in K8S_INTERNAL, rule
        else:
            # The Kubernetes API's 443 is for admins and nodes, never the gateway's public.
            assert rule.group == "k8s-master" and rule.source in admin, rule
    edge_https = {r.source for r in ingress(run) if r.group == "edge" and r.opens(443)}
    assert edge_https == (public if run.stand.is_cloud else set())


def test_ssh_only_from_admin_cidrs(run):
    admin = {str(c) for c in run.stand.network.admin_cidrs}
    for rule in ingress(run):
        if not rule.opens(22):
            continue
        if rule.group == "k8s-nodes":
            assert rule.source in K8S_INTERNAL, rule
        else:
            # Engines have no public address: admins reach them through the edge host.
            allowed = admin | ({_edge_bastion(run.stand)} if rule.group == "engine" else set())
            assert rule.source in allowed, rule


def test_engine_gateway_and_metrics_ports_only_inside_the_subnet(run):
    subnet = str(run.stand.network.subnet_cidr)
    internal = {run.stand.engine.port, run.stand.gateway.port, NODE_EXPORTER_PORT, DCGM_EXPORTER_PORT}
    for rule in ingress(run):
        if rule.group in ("edge", "engine") and any(rule.opens(p) for p in internal):
            assert rule.source == subnet, rule


def test_nothing_else_is_open(run):
    """Every ingress rule is one the policy names; no ranges on VMs."""
    s = run.stand
    expected = {
        "edge": {443, 22, s.gateway.port, NODE_EXPORTER_PORT},
        "engine": {22, s.engine.port, NODE_EXPORTER_PORT, DCGM_EXPORTER_PORT},
        "k8s-master": set(K8S_API_PORTS),
    }
    for rule in ingress(run):
        if rule.group == "k8s-nodes":
            # Node-to-node, pod and health-check traffic, plus the gateway's node port.
            assert rule.source in K8S_INTERNAL or rule.from_port == rule.to_port == GATEWAY_NODE_PORT, rule
            continue
        assert rule.from_port == rule.to_port and rule.from_port in expected[rule.group], rule
        assert rule.protocol == "TCP", rule


def test_only_the_edge_host_has_a_public_address(run):
    public = [vm.name for vm in vms(run) if vm.public]
    if run.stand.is_cloud:
        assert public == [f"{run.stand.stack}-edge-1"]
        assert public_addresses(run) == 1
    else:
        assert public == [] and public_addresses(run) == 0


def test_every_host_has_a_security_group(run):
    for vm in run.of_type("/computeInstance:ComputeInstance"):
        assert vm.inputs["networkInterfaces"][0]["securityGroupIds"], vm.name
    for port in run.of_type("/port:Port"):
        assert port.inputs["securityGroupIds"], port.name
