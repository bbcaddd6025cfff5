"""Cloud machines: GPU engine hosts and the edge host, with the names and addresses Ansible expects."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import yaml

from infra.cloud.providers import provider_for
from infra.config.contract import Host
from infra.ingress import group_of


@dataclass(frozen=True)
class Image:
    """Yandex: an image family in standard-images. OpenStack: an image name, or a regex on public images."""

    family: str | None = None
    name: str | None = None
    name_regex: str | None = None


@dataclass(frozen=True)
class Machine:
    """A planned host (name, roles, address, GPUs) and what renting it takes."""

    host: Host
    cores: int
    memory_gb: int
    disk_gb: int
    image: Image
    public: bool
    platform: str | None = None  # Yandex
    flavor: str | None = None  # OpenStack
    gpu_cluster: bool = False  # Yandex: join the stand's GPU cluster (InfiniBand)

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def group(self) -> str:
        """Its security group (infra.ingress.group_of)."""
        return group_of(self.host)


@dataclass(frozen=True)
class HostsArgs:
    target: str
    stack: str
    zone: str
    machines: list[Machine]
    ssh_user: str
    ssh_public_keys: list[str]
    network_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    security_groups: dict[str, pulumi.Input[str]]
    labels: dict[str, str]
    floating_ip_pool: pulumi.Input[str] | None = None  # OpenStack: the external network's name
    after: list[pulumi.Resource] = field(default_factory=list)  # e.g. the router, before floating IPs


def cloud_init(hostname: str, user: str, keys: list[str]) -> str:
    """User-data that leaves a host ready for Ansible: the admin user with the keys, sudo, python3."""
    doc = {
        "hostname": hostname,
        "users": [{"name": user, "groups": ["sudo"], "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL",
                   "lock_passwd": True, "ssh_authorized_keys": list(keys)}],
        "ssh_pwauth": False,
        "disable_root": True,
        # Ubuntu cloud images ship python3; listing it keeps other images Ansible-ready too.
        "packages": ["python3"],
    }
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False)


class Hosts(pulumi.ComponentResource):
    hosts: list[dict]  # the `hosts` stack output (the contract's Host, public addresses as Outputs)
    public_addresses: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: HostsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:Hosts", name, None, opts)
        public = provider_for(args.target).machines(self, args)
        self.public_addresses = {n: a for n, a in public.items() if a is not None}
        self.hosts = [m.host.as_output(public_address=public[m.name]) for m in args.machines]
        self.register_outputs({"hosts": self.hosts})
