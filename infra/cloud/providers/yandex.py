"""Yandex Cloud: VPC, security groups, Compute instances (GPU clusters), Object Storage, Managed Kubernetes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi

from infra.cloud import yandex_sdk as yc
from infra.cloud.hosts import HostsArgs, Image, Machine, cloud_init
from infra.cloud.k8s_cluster import GPU_NODE_SELECTOR, GPU_TAINT, ClusterArgs, NodeShape
from infra.cloud.network import NetworkArgs
from infra.cloud.storage import MirrorArgs
from infra.ingress import K8S_POD_CIDR, K8S_SERVICE_CIDR, Ingress


@dataclass
class _Network:
    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    external_network_id: None = None
    external_network_name: None = None


class Yandex:
    def __init__(self) -> None:
        self._images: dict[Image, pulumi.Output[str]] = {}

    # -- network ---------------------------------------------------------------------------------

    def network(self, parent, args: NetworkArgs) -> _Network:
        child = pulumi.ResourceOptions(parent=parent)
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
        return _Network(net.id, subnet.id)

    def security_group(self, parent, name: str, group: str, rules: list[Ingress], network_id, labels) -> pulumi.Output[str]:
        def ingress(rule: Ingress) -> dict:
            out = {"protocol": rule.protocol.upper(), "description": rule.description,
                   "from_port": rule.from_port, "to_port": rule.to_port}
            if rule.predefined:
                out["predefined_target"] = rule.predefined
            else:
                out["v4_cidr_blocks"] = list(rule.sources)
            return out

        sg = yc.VpcSecurityGroup(
            name, name=name, network_id=network_id, labels={**labels, "role": group},
            ingresses=[ingress(r) for r in rules],
            egresses=[{"protocol": "ANY", "description": "any egress", "v4_cidr_blocks": ["0.0.0.0/0"],
                       "from_port": 0, "to_port": 65535}],
            opts=pulumi.ResourceOptions(parent=parent))
        return sg.id

    # -- machines --------------------------------------------------------------------------------

    def image(self, stand, settings, *, vendor_driver: bool) -> Image:
        # Vendor-image platforms boot only the vendor's image (its driver cannot be changed).
        return Image(family=settings.vendor_image_family if vendor_driver else (stand.hosts.image or settings.image_family))

    def machines(self, parent, args: HostsArgs) -> dict[str, pulumi.Output[str] | None]:
        child = pulumi.ResourceOptions(parent=parent)
        gpu_cluster = None
        if any(m.gpu_cluster for m in args.machines):
            gpu_cluster = yc.ComputeGpuCluster(f"{args.stack}-gpu-cluster", name=f"{args.stack}-gpu-cluster",
                                               interconnect_type="infiniband", zone=args.zone, labels=args.labels,
                                               opts=child)
        return {m.name: self._machine(parent, m, args, gpu_cluster) for m in args.machines}

    def _image_id(self, parent, image: Image) -> pulumi.Output[str]:
        if image not in self._images:
            found = yc.get_compute_image_output(family=image.family, folder_id=yc.STANDARD_IMAGES_FOLDER,
                                                opts=pulumi.InvokeOutputOptions(parent=parent))
            self._images[image] = found.id
        return self._images[image]

    def _machine(self, parent, m: Machine, args: HostsArgs, gpu_cluster) -> pulumi.Output[str] | None:
        child = pulumi.ResourceOptions(parent=parent)
        labels = {**args.labels, "role": m.group, "gpus": str(m.host.gpus)}
        nat_ip = None
        if m.public:
            # A reserved address survives re-creating the VM, so the gateway's DNS record stays valid.
            address = yc.VpcAddress(f"{m.name}-address", name=f"{m.name}-address", labels=labels,
                                    external_ipv4_address={"zone_id": args.zone}, opts=child)
            nat_ip = address.external_ipv4_address.apply(lambda a: a.address)
        yc.ComputeInstance(
            m.name, name=m.name, hostname=m.name, zone=args.zone, platform_id=m.platform,
            resources={"cores": m.cores, "memory": m.memory_gb, "gpus": m.host.gpus or None},
            boot_disk={"initialize_params": {"image_id": self._image_id(parent, m.image), "size": m.disk_gb,
                                             "type": "network-ssd"}},
            network_interfaces=[{"subnet_id": args.subnet_id, "ip_address": str(m.host.private_address), "nat": m.public,
                                 "nat_ip_address": nat_ip, "security_group_ids": [args.security_groups[m.group]]}],
            gpu_cluster_id=gpu_cluster.id if (m.gpu_cluster and gpu_cluster) else None,
            metadata={"user-data": cloud_init(m.name, args.ssh_user, args.ssh_public_keys)},
            labels=labels, allow_stopping_for_update=True, opts=child)
        return nat_ip

    # -- storage ---------------------------------------------------------------------------------

    def mirror(self, parent, args: MirrorArgs):
        child = pulumi.ResourceOptions(parent=parent)
        account = yc.IamServiceAccount(f"{args.stack}-mirror", name=f"{args.stack}-mirror",
                                       description=f"reads and writes the {args.bucket} bucket only", opts=child)
        key = yc.IamServiceAccountStaticAccessKey(f"{args.stack}-mirror-key", service_account_id=account.id,
                                                  description=f"S3 key for {args.bucket}", opts=child)
        # A bucket grant, not a folder role: the key opens this bucket and no other.
        bucket = yc.StorageBucket(
            args.bucket, bucket=args.bucket,
            grants=[{"type": "CanonicalUser", "id": account.id, "permissions": ["READ", "WRITE"]}],
            anonymous_access_flags={"read": False, "list": False, "config_read": False},
            versioning={"enabled": True}, tags=args.labels, opts=child)
        return bucket.bucket, key.access_key, key.secret_key

    # -- Managed Kubernetes ----------------------------------------------------------------------

    def cluster_settings(self, stand, settings, network) -> dict:
        # Service account roles are granted on the folder the provider deploys into.
        return {"folder_id": pulumi.Config("yandex").require("folderId")}

    def cluster(self, parent, a: ClusterArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=parent)

        def account(suffix: str, roles: list[str]):
            sa = yc.IamServiceAccount(f"{a.name}-{suffix}", name=f"{a.name}-{suffix}", opts=child)
            members = [yc.ResourcemanagerFolderIamMember(f"{a.name}-{suffix}-{role.replace('.', '-')}",
                                                         folder_id=a.folder_id, role=role,
                                                         member=sa.id.apply(lambda i: f"serviceAccount:{i}"),
                                                         opts=child) for role in roles]
            return sa, members

        # The cluster account manages nodes, public addresses and the gateway's load balancer.
        cluster_sa, cluster_roles = account("agent", ["k8s.clusters.agent", "vpc.publicAdmin", "load-balancer.admin"])
        node_sa, node_roles = account("nodes", ["container-registry.images.puller"])
        sgs = a.security_groups or {}
        cluster = yc.KubernetesCluster(
            a.name, name=a.name, network_id=a.network_id, labels=a.labels, release_channel="STABLE",
            cluster_ipv4_range=K8S_POD_CIDR, service_ipv4_range=K8S_SERVICE_CIDR,
            service_account_id=cluster_sa.id, node_service_account_id=node_sa.id,
            master={"version": a.version, "public_ip": True, "zonal": {"zone": a.zone, "subnet_id": a.subnet_id},
                    "security_group_ids": [sgs["k8s-master"], sgs["k8s-nodes"]]},
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[*cluster_roles, *node_roles]))
        gpu_cluster = None
        if a.gpu_cluster:
            gpu_cluster = yc.ComputeGpuCluster(f"{a.name}-gpu-cluster", name=f"{a.name}-gpu-cluster",
                                               interconnect_type="infiniband", zone=a.zone, labels=a.labels,
                                               opts=child)

        def template(shape: NodeShape) -> dict:
            out = {"platform_id": shape.platform,
                   "resources": {"cores": shape.cores, "memory": shape.memory_gb, "gpus": shape.gpus or None},
                   "boot_disk": {"size": shape.disk_gb, "type": "network-ssd"},
                   "network_interfaces": [{"subnet_ids": [a.subnet_id], "nat": False,
                                           "security_group_ids": [sgs["k8s-nodes"]]}],
                   "container_runtime": {"type": "containerd"}, "labels": a.labels}
            if shape.gpus:
                # "runc": no driver in the node image, the GPU operator installs it;
                # "runc_drivers_cuda": the vendor's driver, which the operator must leave alone.
                out["gpu_settings"] = {"gpu_environment": "runc_drivers_cuda" if a.driver_preinstalled else "runc",
                                       "gpu_cluster_id": gpu_cluster.id if gpu_cluster else None}
            return out

        placement = {"locations": [{"zone": a.zone}]}
        node_opts = pulumi.ResourceOptions(parent=parent, depends_on=[cluster])
        yc.KubernetesNodeGroup(f"{a.name}-system", name=f"{a.name}-system", cluster_id=cluster.id,
                               version=a.version, instance_template=template(a.system),
                               scale_policy={"fixed_scale": {"size": 1}}, allocation_policy=placement,
                               labels=a.labels, opts=node_opts)
        yc.KubernetesNodeGroup(f"{a.name}-gpu", name=f"{a.name}-gpu", cluster_id=cluster.id, version=a.version,
                               instance_template=template(a.gpu),
                               scale_policy={"auto_scale": {"min": a.min_nodes, "max": a.max_nodes,
                                                            "initial": a.initial_nodes}},
                               allocation_policy=placement, node_labels=GPU_NODE_SELECTOR,
                               node_taints=[f"{GPU_TAINT['key']}={GPU_TAINT['value']}:{GPU_TAINT['effect']}"],
                               labels=a.labels, opts=node_opts)
        return cluster.master.apply(lambda m: _kubeconfig(a.name, m.external_v4_endpoint, m.cluster_ca_certificate))


def _kubeconfig(name: str, endpoint: str, ca: str) -> str:
    """A kubeconfig that gets short-lived tokens from the yc CLI (installed and logged in where Pulumi runs)."""
    ca_data = base64.b64encode((ca or "").encode()).decode()
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": "yc", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                                   "command": "yc", "args": ["k8s", "create-token"],
                                                   "interactiveMode": "Never"}}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "yc"}}],
    })


def provider() -> Yandex:
    return Yandex()
