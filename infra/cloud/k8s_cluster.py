"""Managed Kubernetes with a GPU node group: Yandex Managed Kubernetes, or OpenStack Magnum (Selectel, VK)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

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
        from infra.cloud.providers import provider_for

        super().__init__("llm-stands:cloud:ManagedCluster", name, None, opts)
        self.kubeconfig = pulumi.Output.secret(provider_for(args.target).cluster(self, args))
        self.register_outputs({"kubeconfig": self.kubeconfig})
