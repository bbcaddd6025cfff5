"""Cloud machines: GPU engine hosts and the edge host, with the names and addresses Ansible expects."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_openstack as openstack
import yaml

from infra.cloud import yandex_sdk as yc


@dataclass(frozen=True)
class Image:
    """Yandex: an image family in standard-images. OpenStack: an image name, or a regex on public images."""

    family: str | None = None
    name: str | None = None
    name_regex: str | None = None


@dataclass(frozen=True)
class Machine:
    name: str
    role: str  # the security group it joins: engine | edge
    roles: tuple[str, ...]  # the Ansible groups it belongs to
    address: str
    cores: int
    memory_gb: int
    disk_gb: int
    gpus: int
    gpu: str | None
    image: Image
    public: bool
    platform: str | None = None  # Yandex
    flavor: str | None = None  # OpenStack
    gpu_cluster: bool = False  # Yandex: join the stand's GPU cluster (InfiniBand)


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
    hosts: list[dict]  # the `hosts` stack output (Outputs inside)
    public_addresses: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: HostsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:Hosts", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self._images: dict[Image, pulumi.Output[str]] = {}
        self.public_addresses = {}
        gpu_cluster = None
        if args.target == "yandex" and any(m.gpu_cluster for m in args.machines):
            gpu_cluster = yc.ComputeGpuCluster(f"{args.stack}-gpu-cluster", name=f"{args.stack}-gpu-cluster",
                                               interconnect_type="infiniband", zone=args.zone, labels=args.labels,
                                               opts=self._child)
        make = self._yandex if args.target == "yandex" else self._openstack
        self.hosts = []
        for m in args.machines:
            public = make(m, args, gpu_cluster)
            if public is not None:
                self.public_addresses[m.name] = public
            self.hosts.append({"name": m.name, "roles": list(m.roles), "private_address": m.address,
                               "public_address": public, "gpus": m.gpus, "gpu": m.gpu, "ssh_user": args.ssh_user})
        self.register_outputs({"hosts": self.hosts})

    def _image_id(self, image: Image, target: str) -> pulumi.Output[str]:
        if image not in self._images:
            invoke = pulumi.InvokeOutputOptions(parent=self)
            if target == "yandex":
                found = yc.get_compute_image_output(family=image.family, folder_id=yc.STANDARD_IMAGES_FOLDER, opts=invoke)
            elif image.name:
                found = openstack.images.get_image_output(name=image.name, most_recent=True, opts=invoke)
            else:
                found = openstack.images.get_image_output(name_regex=image.name_regex, visibility="public",
                                                          most_recent=True, opts=invoke)
            self._images[image] = found.id
        return self._images[image]

    def _yandex(self, m: Machine, args: HostsArgs, gpu_cluster) -> pulumi.Output[str] | None:
        labels = {**args.labels, "role": m.role, "gpus": str(m.gpus)}
        nat_ip = None
        if m.public:
            # A reserved address survives re-creating the VM, so the gateway's DNS record stays valid.
            address = yc.VpcAddress(f"{m.name}-address", name=f"{m.name}-address", labels=labels,
                                    external_ipv4_address={"zone_id": args.zone}, opts=self._child)
            nat_ip = address.external_ipv4_address.apply(lambda a: a.address)
        yc.ComputeInstance(
            m.name, name=m.name, hostname=m.name, zone=args.zone, platform_id=m.platform,
            resources={"cores": m.cores, "memory": m.memory_gb, "gpus": m.gpus or None},
            boot_disk={"initialize_params": {"image_id": self._image_id(m.image, "yandex"), "size": m.disk_gb,
                                             "type": "network-ssd"}},
            network_interfaces=[{"subnet_id": args.subnet_id, "ip_address": m.address, "nat": m.public,
                                 "nat_ip_address": nat_ip, "security_group_ids": [args.security_groups[m.role]]}],
            gpu_cluster_id=gpu_cluster.id if (m.gpu_cluster and gpu_cluster) else None,
            metadata={"user-data": cloud_init(m.name, args.ssh_user, args.ssh_public_keys)},
            labels=labels, allow_stopping_for_update=True, opts=self._child)
        return nat_ip

    def _openstack(self, m: Machine, args: HostsArgs, _gpu_cluster) -> pulumi.Output[str] | None:
        meta = {**args.labels, "role": m.role, "gpus": str(m.gpus), **({"gpu": m.gpu} if m.gpu else {})}
        tags = [f"{k}={v}" for k, v in meta.items()]
        # A port pins the planned private address and carries the security group.
        port = openstack.networking.Port(
            f"{m.name}-port", name=f"{m.name}-port", network_id=args.network_id,
            fixed_ips=[{"subnet_id": args.subnet_id, "ip_address": m.address}],
            security_group_ids=[args.security_groups[m.role]], tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after))
        openstack.compute.Instance(
            m.name, name=m.name, flavor_name=m.flavor, availability_zone=args.zone,
            block_devices=[{"source_type": "image", "uuid": self._image_id(m.image, args.target),
                            "destination_type": "volume", "volume_size": m.disk_gb, "boot_index": 0,
                            "delete_on_termination": True}],
            networks=[{"port": port.id}], user_data=cloud_init(m.name, args.ssh_user, args.ssh_public_keys),
            metadata=meta, tags=tags, opts=self._child)
        if not m.public:
            return None
        fip = openstack.networking.FloatingIp(f"{m.name}-fip", pool=args.floating_ip_pool, port_id=port.id,
                                              description=f"{m.name} public address", tags=tags,
                                              opts=pulumi.ResourceOptions(parent=self, depends_on=args.after))
        return fip.address
