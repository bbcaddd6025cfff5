"""A stand on managed Kubernetes: the cluster, then the GPU operator, vLLM and the gateway inside it."""

from __future__ import annotations

import math

import pulumi
import pulumi_kubernetes as k8s

from infra import PROJECT, catalog, engine
from infra.cloud import common
from infra.cloud.k8s_cluster import GPU_NODE_SELECTOR, GPU_TAINT, ClusterArgs, ManagedCluster, NodeShape
from infra.cloud.k8s_workloads import (
    MODEL_DIR,
    Engine,
    EngineArgs,
    Gateway,
    GatewayArgs,
    GpuOperator,
    GpuOperatorArgs,
    ModelSync,
    litellm_config,
)
from infra.cloud.network import Network
from infra.cloud.providers import provider_for
from infra.cloud.secret_refs import SecretSource
from infra.cloud.security import SecurityGroups
from infra.cloud.settings import CloudSettings
from infra.cloud.storage import Mirror
from infra.config.model import HF_SOURCE, S3_SOURCE, Stand
from infra.ingress import GATEWAY_NODE_PORT, HTTPS_PORT, row

# The same LiteLLM release the VM gateway was measured with.
GATEWAY_IMAGE = "ghcr.io/berriai/litellm:main-v1.108.7"
NAMESPACE = PROJECT


def deploy_kubernetes(stand: Stand, offer: catalog.Offer, settings: CloudSettings, secrets: SecretSource,
                      network: Network, groups: SecurityGroups, mirror: Mirror,
                      fallback_url: pulumi.Output[str] | None) -> pulumi.Output[str]:
    """Build the cluster and its workloads; return the gateway's public endpoint."""
    kube = stand.kubernetes
    tp, per_node = stand.tensor_parallel_size, stand.hosts.engine.gpus_per_host
    pods_per_node = max(per_node // tp, 1)
    initial = min(max(math.ceil(stand.hosts.engine.replicas / pods_per_node), kube.min_nodes), kube.max_nodes)
    cloud = common.cloud_defaults(stand)
    edge = stand.hosts.edge
    cluster = ManagedCluster(f"{stand.stack}-k8s", ClusterArgs(
        target=stand.target, name=f"{stand.stack}-k8s", version=kube.version, zone=common.zone(stand),
        network_id=network.network_id, subnet_id=network.subnet_id,
        system=NodeShape(edge.cores, edge.memory_gb, edge.disk_gb, platform=cloud.edge_platform, flavor=cloud.edge_flavor),
        gpu=NodeShape(offer.cores_per_gpu * per_node, offer.memory_gb_per_gpu * per_node, common.engine_disk_gb(stand),
                      per_node, platform=offer.platform,
                      flavor=offer.flavor(per_node) if offer.flavor_prefix else None),
        min_nodes=kube.min_nodes, max_nodes=kube.max_nodes, initial_nodes=initial,
        admin_cidrs=[str(c) for c in stand.network.admin_cidrs], labels=common.labels(stand.stack, "kubernetes"),
        security_groups=groups.ids,
        gpu_cluster=bool(offer.gpu_cluster_from and per_node >= offer.gpu_cluster_from),
        driver_preinstalled=bool(offer.vendor_image_driver),
        **provider_for(stand.target).cluster_settings(stand, settings, network)))

    provider = k8s.Provider(f"{stand.stack}-k8s", kubeconfig=cluster.kubeconfig)
    in_cluster = pulumi.ResourceOptions(provider=provider)
    ns = k8s.core.v1.Namespace(NAMESPACE, metadata={"name": NAMESPACE, "labels": common.labels(stand.stack)},
                               opts=in_cluster)
    operator = GpuOperator(f"{stand.stack}-gpu-operator", GpuOperatorArgs(
        settings.gpu_operator_repo, settings.gpu_operator_version, install_driver=not offer.vendor_image_driver),
        opts=in_cluster)
    engine_key = secrets.value(stand.engine.api_key, "engine.api_key")
    vllm = Engine(f"{stand.stack}-vllm", EngineArgs(
        name=f"{stand.stack}-vllm", namespace=ns.metadata.name, image=f"vllm/vllm-openai:v{stand.engine.version}",
        args=vllm_args(stand), env=engine.environment(stand, offline=bool(S3_SOURCE.match(stand.model.source))),
        port=stand.engine.port, gpus=tp, replicas=stand.hosts.engine.replicas,
        max_replicas=max(stand.hosts.engine.replicas, kube.max_nodes * pods_per_node),
        waiting_target=kube.scale_up_waiting, api_key=engine_key, model_cache_gb=common.model_cache_gb(stand),
        node_selector=GPU_NODE_SELECTOR, tolerations=[{**GPU_TAINT, "operator": "Equal"}],
        sync=_model_sync(stand, mirror, cloud)),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[operator]))
    fallback_model = _fallback_model(stand)
    gateway = Gateway(f"{stand.stack}-gateway", GatewayArgs(
        name=f"{stand.stack}-gateway", namespace=ns.metadata.name, image=GATEWAY_IMAGE, port=stand.gateway.port,
        public_port=HTTPS_PORT, node_port=GATEWAY_NODE_PORT,
        # The load balancer admits the gateway-https row's sources; its node port the same (one row).
        public_cidrs=list(row(stand, "gateway-https").sources),
        master_key=secrets.value(stand.gateway.master_key, "gateway.master_key"), engine_key=engine_key,
        fallback_key=settings.fallback_key if fallback_url is not None else None,
        config=litellm_config(stand.model.served_name, vllm.url, fallback_url, fallback_model)),
        opts=in_cluster)
    return gateway.endpoint


def vllm_args(stand: Stand) -> list[str]:
    """The engine's command line in a pod: infra.engine's, with the pod's model and address."""
    hf = HF_SOURCE.match(stand.model.source)
    if hf:  # no mirror: the engine downloads the pinned revision itself
        return engine.command(stand, model=hf["repo"], revision=hf["revision"], host="0.0.0.0")
    return engine.command(stand, model=MODEL_DIR, host="0.0.0.0")


def _model_sync(stand: Stand, mirror: Mirror, cloud: catalog.CloudDefaults) -> ModelSync | None:
    s3 = S3_SOURCE.match(stand.model.source)
    if not s3:
        return None
    return ModelSync(s3["bucket"], s3["prefix"], common.mirror_endpoint(stand), cloud.storage_region,
                     mirror.access_key, mirror.secret_key)


def _fallback_model(stand: Stand) -> str | None:
    if not stand.gateway.fallback_stack:
        return None
    from infra.config.loader import load_stand

    return load_stand(stand.gateway.fallback_stack, check=False).model.served_name
