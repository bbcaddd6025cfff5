"""OpenStack clouds (Selectel, VK Cloud): Neutron, security groups, Nova on boot volumes, Swift with
EC2 keys for S3, Magnum for Kubernetes."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from infra.cloud.hosts import HostsArgs, Image, Machine, cloud_init
from infra.cloud.k8s_cluster import ClusterArgs
from infra.cloud.network import NetworkArgs
from infra.cloud.storage import MirrorArgs
from infra.ingress import Ingress


@dataclass
class _Network:
    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    external_network_id: pulumi.Output[str]
    external_network_name: pulumi.Output[str]


def _tags(labels: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in labels.items()]


class OpenStack:
    def __init__(self) -> None:
        self._images: dict[Image, pulumi.Output[str]] = {}
        self._network: _Network | None = None

    def network(self, parent, args: NetworkArgs) -> _Network:
        child = pulumi.ResourceOptions(parent=parent)
        tags = _tags(args.labels)
        lookup = ({"network_id": args.external_network_id} if args.external_network_id
                  else {"external": True})  # the project's one external network
        external = openstack.networking.get_network_output(**lookup, opts=pulumi.InvokeOutputOptions(parent=parent))
        net = openstack.networking.Network(args.name, name=args.name, admin_state_up=True, tags=tags, opts=child)
        subnet = openstack.networking.Subnet(f"{args.name}-subnet", name=f"{args.name}-subnet", network_id=net.id,
                                             cidr=args.cidr, ip_version=4, enable_dhcp=True, tags=tags, opts=child)
        # The router's SNAT gives engines egress without public addresses.
        router = openstack.networking.Router(f"{args.name}-router", name=f"{args.name}-router",
                                             external_network_id=external.id, tags=tags, opts=child)
        openstack.networking.RouterInterface(f"{args.name}-router-if", router_id=router.id,
                                             subnet_id=subnet.id, opts=child)
        return _Network(net.id, subnet.id, external.id, external.name)

    def security_group(self, parent, name: str, group: str, rules: list[Ingress], network_id, labels) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=parent)
        # New groups come with egress-allow rules only; ingress is exactly the rules below.
        sg = openstack.networking.SecGroup(name, name=name, description=f"{group} hosts",
                                           tags=_tags({**labels, "role": group}), opts=child)
        for i, rule in enumerate(rules):
            if rule.predefined:
                raise ValueError(f"{rule.predefined} is a Yandex-only rule target")
            for j, source in enumerate(rule.sources):
                openstack.networking.SecGroupRule(
                    f"{name}-{i}-{j}", security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                    protocol=None if rule.protocol == "any" else rule.protocol,
                    port_range_min=rule.from_port, port_range_max=rule.to_port,
                    remote_ip_prefix=source, description=rule.description, opts=child)
        return sg.id

    def image(self, stand, settings, *, vendor_driver: bool) -> Image:
        return Image(name=stand.hosts.image) if stand.hosts.image else Image(name_regex=settings.openstack_image_regex)

    def _image_id(self, parent, image: Image) -> pulumi.Output[str]:
        if image not in self._images:
            invoke = pulumi.InvokeOutputOptions(parent=parent)
            if image.name:
                found = openstack.images.get_image_output(name=image.name, most_recent=True, opts=invoke)
            else:
                found = openstack.images.get_image_output(name_regex=image.name_regex, visibility="public",
                                                          most_recent=True, opts=invoke)
            self._images[image] = found.id
        return self._images[image]

    def machines(self, parent, args: HostsArgs) -> dict[str, pulumi.Output[str] | None]:
        return {m.name: self._machine(parent, m, args) for m in args.machines}

    def _machine(self, parent, m: Machine, args: HostsArgs) -> pulumi.Output[str] | None:
        meta = {**args.labels, "role": m.group, "gpus": str(m.host.gpus), **({"gpu": m.host.gpu} if m.host.gpu else {})}
        tags = _tags(meta)
        after = pulumi.ResourceOptions(parent=parent, depends_on=args.after)
        # A port pins the planned private address and carries the security group.
        port = openstack.networking.Port(
            f"{m.name}-port", name=f"{m.name}-port", network_id=args.network_id,
            fixed_ips=[{"subnet_id": args.subnet_id, "ip_address": str(m.host.private_address)}],
            security_group_ids=[args.security_groups[m.group]], tags=tags, opts=after)
        openstack.compute.Instance(
            m.name, name=m.name, flavor_name=m.flavor, availability_zone=args.zone,
            block_devices=[{"source_type": "image", "uuid": self._image_id(parent, m.image),
                            "destination_type": "volume", "volume_size": m.disk_gb, "boot_index": 0,
                            "delete_on_termination": True}],
            networks=[{"port": port.id}], user_data=cloud_init(m.name, args.ssh_user, args.ssh_public_keys),
            metadata=meta, tags=tags, opts=pulumi.ResourceOptions(parent=parent))
        if not m.public:
            return None
        fip = openstack.networking.FloatingIp(f"{m.name}-fip", pool=args.floating_ip_pool, port_id=port.id,
                                              description=f"{m.name} public address", tags=tags, opts=after)
        return fip.address

    def mirror(self, parent, args: MirrorArgs):
        child = pulumi.ResourceOptions(parent=parent)
        # No container_read/write ACL: only the project's credentials reach it.
        container = openstack.objectstorage.Container(
            args.bucket, name=args.bucket, versioning=True, metadata=args.labels, opts=child)
        # EC2-style credentials are the S3 keys of Selectel's and VK's object storage.
        creds = openstack.identity.Ec2CredentialV3(f"{args.stack}-mirror-key", opts=child)
        return container.name, creds.access, creds.secret

    def cluster_settings(self, stand, settings, network) -> dict:
        return {"external_network_id": network.external_network_id, "magnum_image": settings.magnum_image,
                "ssh_public_key": stand.hosts.ssh_public_keys[0] if stand.hosts.ssh_public_keys else None}

    def cluster(self, parent, a: ClusterArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=parent)
        keypair = None
        if a.ssh_public_key:
            keypair = openstack.compute.Keypair(f"{a.name}-admin", name=f"{a.name}-admin",
                                                public_key=a.ssh_public_key, opts=child)
        template = openstack.containerinfra.ClusterTemplate(
            a.name, name=a.name, coe="kubernetes", image=a.magnum_image,
            external_network_id=a.external_network_id, fixed_network=a.network_id, fixed_subnet=a.subnet_id,
            flavor=a.system.flavor, master_flavor=a.system.flavor, docker_volume_size=a.system.disk_gb,
            network_driver="calico", volume_driver="cinder", floating_ip_enabled=False, master_lb_enabled=True,
            labels={"kube_tag": f"v{a.version}", "container_runtime": "containerd", "auto_scaling_enabled": "true",
                    # The API gets a public address (Pulumi deploys through it), reachable from admin networks only.
                    "master_lb_floating_ip_enabled": "true", "api_master_lb_allowed_cidrs": ",".join(a.admin_cidrs)},
            opts=child)
        cluster = openstack.containerinfra.Cluster(
            a.name, name=a.name, cluster_template_id=template.id, master_count=1, node_count=1,
            keypair=keypair.name if keypair else None, merge_labels=True, labels=a.labels, opts=child)
        openstack.containerinfra.NodeGroup(
            f"{a.name}-gpu", name="gpu", cluster_id=cluster.id, role="gpu", flavor_id=a.gpu.flavor,
            docker_volume_size=a.gpu.disk_gb, node_count=a.initial_nodes,
            min_node_count=a.min_nodes, max_node_count=a.max_nodes, labels=a.labels, merge_labels=True,
            opts=child)
        return cluster.kubeconfig.apply(lambda k: (k or {}).get("raw_config", ""))


def provider() -> OpenStack:
    return OpenStack()
