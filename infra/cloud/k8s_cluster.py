"""Managed Kubernetes with a GPU node group: Yandex Managed Kubernetes, or OpenStack Magnum (Selectel, VK)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from infra.cloud import yandex_sdk as yc
from infra.cloud.security import K8S_POD_CIDR, K8S_SERVICE_CIDR

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
# Magnum labels a node group's nodes with its role; on Yandex we set the same label ourselves.
GPU_NODE_SELECTOR = {"magnum.openstack.org/role": "gpu"}


@dataclass(frozen=True)
class NodeShape:
    cores: int
    memory_gb: int
    disk_gb: int
    gpus: int = 0
    platform: str | None = None  # Yandex
    flavor: str | None = None  # OpenStack


@dataclass(frozen=True)
class ClusterArgs:
    target: str
    name: str
    version: str
    zone: str
    network_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    system: NodeShape  # runs the gateway, the GPU operator's control plane, prometheus-adapter
    gpu: NodeShape
    min_nodes: int
    max_nodes: int
    initial_nodes: int
    admin_cidrs: list[str]
    labels: dict[str, str]
    # Yandex
    folder_id: str | None = None
    security_groups: dict[str, pulumi.Input[str]] | None = None
    gpu_cluster: bool = False
    driver_preinstalled: bool = False  # vendor image platforms keep their driver; the operator must not install one
    # OpenStack
    external_network_id: pulumi.Input[str] | None = None
    magnum_image: str | None = None
    ssh_public_key: str | None = None


class ManagedCluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]  # secret

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:ManagedCluster", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        raw = self._yandex(args) if args.target == "yandex" else self._magnum(args)
        self.kubeconfig = pulumi.Output.secret(raw)
        self.register_outputs({"kubeconfig": self.kubeconfig})

    def _yandex(self, a: ClusterArgs) -> pulumi.Output[str]:
        def account(suffix: str, roles: list[str]):
            sa = yc.IamServiceAccount(f"{a.name}-{suffix}", name=f"{a.name}-{suffix}", opts=self._child)
            members = [yc.ResourcemanagerFolderIamMember(f"{a.name}-{suffix}-{role.replace('.', '-')}",
                                                         folder_id=a.folder_id, role=role,
                                                         member=sa.id.apply(lambda i: f"serviceAccount:{i}"),
                                                         opts=self._child) for role in roles]
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*cluster_roles, *node_roles]))
        gpu_cluster = None
        if a.gpu_cluster:
            gpu_cluster = yc.ComputeGpuCluster(f"{a.name}-gpu-cluster", name=f"{a.name}-gpu-cluster",
                                               interconnect_type="infiniband", zone=a.zone, labels=a.labels,
                                               opts=self._child)

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
        node_opts = pulumi.ResourceOptions(parent=self, depends_on=[cluster])
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
        return cluster.master.apply(lambda m: _yandex_kubeconfig(a.name, m.external_v4_endpoint, m.cluster_ca_certificate))

    def _magnum(self, a: ClusterArgs) -> pulumi.Output[str]:
        keypair = None
        if a.ssh_public_key:
            keypair = openstack.compute.Keypair(f"{a.name}-admin", name=f"{a.name}-admin",
                                                public_key=a.ssh_public_key, opts=self._child)
        template = openstack.containerinfra.ClusterTemplate(
            a.name, name=a.name, coe="kubernetes", image=a.magnum_image,
            external_network_id=a.external_network_id, fixed_network=a.network_id, fixed_subnet=a.subnet_id,
            flavor=a.system.flavor, master_flavor=a.system.flavor, docker_volume_size=a.system.disk_gb,
            network_driver="calico", volume_driver="cinder", floating_ip_enabled=False, master_lb_enabled=True,
            labels={"kube_tag": f"v{a.version}", "container_runtime": "containerd", "auto_scaling_enabled": "true",
                    # The API gets a public address (Pulumi deploys through it), reachable from admin networks only.
                    "master_lb_floating_ip_enabled": "true", "api_master_lb_allowed_cidrs": ",".join(a.admin_cidrs)},
            opts=self._child)
        cluster = openstack.containerinfra.Cluster(
            a.name, name=a.name, cluster_template_id=template.id, master_count=1, node_count=1,
            keypair=keypair.name if keypair else None, merge_labels=True, labels=a.labels, opts=self._child)
        openstack.containerinfra.NodeGroup(
            f"{a.name}-gpu", name="gpu", cluster_id=cluster.id, role="gpu", flavor_id=a.gpu.flavor,
            docker_volume_size=a.gpu.disk_gb, node_count=a.initial_nodes,
            min_node_count=a.min_nodes, max_node_count=a.max_nodes, labels=a.labels, merge_labels=True,
            opts=self._child)
        return cluster.kubeconfig.apply(lambda k: (k or {}).get("raw_config", ""))


def _yandex_kubeconfig(name: str, endpoint: str, ca: str) -> str:
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
