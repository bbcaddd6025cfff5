"""Read a program run the way a reviewer reads a plan: VMs, open ports, buckets, from raw inputs.

Deliberately independent of infra.cloud.plan's summaries, so a bug there cannot hide a violation.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from infra.cloud.plan import ProgramRun


@dataclass(frozen=True)
class Ingress:
    group: str  # role of the security group: edge, engine, k8s-master, k8s-nodes
    protocol: str
    from_port: int
    to_port: int
    source: str  # a CIDR, or a Yandex predefined target

    @property
    def cidr(self) -> IPv4Network | None:
        return IPv4Network(self.source) if "/" in self.source else None

    @property
    def from_world(self) -> bool:
        return self.cidr is not None and self.cidr.prefixlen == 0

    def opens(self, port: int) -> bool:
        return self.from_port <= port <= self.to_port


@dataclass(frozen=True)
class Vm:
    name: str
    role: str
    gpus: int
    platform: str | None
    flavor: str | None
    disk_gb: int
    public: bool
    address: str
    user_data: str
    gpu_cluster: bool


def _tags(tags: list[str] | None) -> dict[str, str]:
    return dict(t.split("=", 1) for t in tags or [])


def ingress(run: ProgramRun) -> list[Ingress]:
    rules = []
    for sg in run.of_type(":VpcSecurityGroup"):
        role = sg.inputs["labels"]["role"]
        for rule in sg.inputs.get("ingresses", []):
            for source in rule.get("v4CidrBlocks") or [rule.get("predefinedTarget")]:
                rules.append(Ingress(role, rule["protocol"].upper(), rule.get("fromPort", 0),
                                     rule.get("toPort", 65535), source))
    groups = {sg.id: _tags(sg.inputs.get("tags"))["role"] for sg in run.of_type("/secGroup:SecGroup")}
    for rule in run.of_type(":SecGroupRule"):
        i = rule.inputs
        assert i["direction"] == "ingress"
        rules.append(Ingress(groups[i["securityGroupId"]], (i.get("protocol") or "any").upper(),
                             i.get("portRangeMin", 0), i.get("portRangeMax", 65535), i["remoteIpPrefix"]))
    return rules


def vms(run: ProgramRun) -> list[Vm]:
    out = []
    for vm in run.of_type("/computeInstance:ComputeInstance"):
        i = vm.inputs
        nic = i["networkInterfaces"][0]
        out.append(Vm(i["name"], i["labels"]["role"], i["resources"].get("gpus") or 0, i["platformId"], None,
                      i["bootDisk"]["initializeParams"]["size"], bool(nic.get("nat")), nic["ipAddress"],
                      i["metadata"]["user-data"], bool(i.get("gpuClusterId"))))
    ports = {p.id: p for p in run.of_type("/port:Port")}
    floating = {f.inputs.get("portId") for f in run.of_type("/floatingIp:FloatingIp")}
    for vm in run.of_type("openstack:compute/instance:Instance"):
        i = vm.inputs
        port = ports[i["networks"][0]["port"]]
        out.append(Vm(i["name"], i["metadata"]["role"], int(i["metadata"]["gpus"]), None, i["flavorName"],
                      i["blockDevices"][0]["volumeSize"], port.id in floating,
                      port.inputs["fixedIps"][0]["ipAddress"], i["userData"], False))
    return out


def public_addresses(run: ProgramRun) -> int:
    """Reserved public addresses (Yandex) and floating IPs (OpenStack)."""
    return len(run.of_type(":VpcAddress")) + len(run.of_type("/floatingIp:FloatingIp"))
