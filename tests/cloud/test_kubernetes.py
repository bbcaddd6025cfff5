"""Stands on managed Kubernetes: the `test` stack (VK, Magnum) and in-memory Yandex/Selectel variants."""

from __future__ import annotations

import json

import pytest

from infra.cloud.k8s_workloads import WAITING_METRIC
from infra.config.checks import resolve_offer
from infra.config.loader import load_stand

from .conftest import STACKS, run_of, variation

KEYS = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKey000000000000000000000000000000000 ops@example"]
K8S_STACKS = [s for s in STACKS if load_stand(s).kubernetes.enabled]


def yandex_kubernetes(gpus: int = 4, offer: str | None = None):
    engine = {"gpu": "A100-80G", "gpus_per_host": gpus, "replicas": 2, **({"offer": offer} if offer else {})}
    return variation("prod", "ykube", hosts={"engine": engine, "ssh_public_keys": KEYS},
                     kubernetes={"enabled": True, "min_nodes": 1, "max_nodes": 3, "scale_up_waiting": 7})


def selectel_kubernetes():
    return variation("fallback", "skube", kubernetes={"enabled": True, "max_nodes": 2})


@pytest.fixture(params=[*K8S_STACKS, "yandex-variant", "selectel-variant"])
def kube(request):
    if request.param == "yandex-variant":
        return run_of(yandex_kubernetes())
    if request.param == "selectel-variant":
        return run_of(selectel_kubernetes())
    return run_of(request.param)


def _one(run, suffix):
    found = run.of_type(suffix)
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def _named(run, suffix, name):
    return next(r for r in run.of_type(suffix) if r.name == name)


def test_the_test_stack_is_on_kubernetes():
    assert K8S_STACKS == ["test"]


def test_gpu_node_group_has_the_offer_and_the_model_scale(kube):
    stand = kube.stand
    offer = resolve_offer(stand)
    gpus = stand.hosts.engine.gpus_per_host
    if stand.target == "yandex":
        group = _named(kube, ":KubernetesNodeGroup", f"{stand.stack}-k8s-gpu")
        tpl = group.inputs["instanceTemplate"]
        assert tpl["platformId"] == offer.platform and tpl["resources"]["gpus"] == gpus
        assert tpl["gpuSettings"]["gpuEnvironment"] == "runc"  # the operator installs the driver
        scale = group.inputs["scalePolicy"]["autoScale"]
        assert (scale["min"], scale["max"]) == (stand.kubernetes.min_nodes, stand.kubernetes.max_nodes)
        assert group.inputs["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"]
    else:
        group = _one(kube, "/nodeGroup:NodeGroup")
        assert group.inputs["flavorId"] == offer.flavor(gpus)
        assert (group.inputs["minNodeCount"], group.inputs["maxNodeCount"]) == \
            (stand.kubernetes.min_nodes, stand.kubernetes.max_nodes)


def test_no_engine_vms_on_kubernetes(kube):
    instances = kube.of_type(":ComputeInstance") + kube.of_type("compute/instance:Instance")
    assert [i.name for i in instances] == [f"{kube.stand.stack}-edge-1"]


def test_gpu_operator_is_a_helm_release(kube):
    release = _one(kube, "helm.sh/v3:Release")
    assert release.inputs["chart"] == "gpu-operator"
    assert release.inputs["repositoryOpts"]["repo"].startswith("https://")
    assert release.inputs["values"]["driver"]["enabled"] is True


def test_vllm_deployment_requests_the_tensor_parallel_gpus_and_waits_for_health(kube):
    stand = kube.stand
    deployment = _named(kube, ":Deployment", f"{stand.stack}-vllm")
    spec = deployment.inputs["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert spec["replicas"] == stand.hosts.engine.replicas
    assert container["resources"]["limits"]["nvidia.com/gpu"] == stand.tensor_parallel_size
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": stand.engine.port}
    args = container["args"]
    for flag, value in {"--served-model-name": stand.model.served_name,
                        "--tensor-parallel-size": str(stand.tensor_parallel_size),
                        "--max-model-len": str(stand.engine.max_model_len), "--port": str(stand.engine.port)}.items():
        assert args[args.index(flag) + 1] == value
    assert "--api-key" not in args  # the key comes from a Secret (VLLM_API_KEY), never the command line
    # The weights come from the stand's mirror.
    init = spec["template"]["spec"]["initContainers"][0]
    assert f"s3://{stand.model.source.removeprefix('s3://')}" in init["command"]


def test_hpa_scales_on_waiting_requests(kube):
    stand = kube.stand
    hpa = _one(kube, ":HorizontalPodAutoscaler")
    spec = hpa.inputs["spec"]
    metric = spec["metrics"][0]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == WAITING_METRIC == "vllm:num_requests_waiting"
    assert metric["pods"]["target"]["averageValue"] == str(stand.kubernetes.scale_up_waiting)
    assert spec["minReplicas"] == stand.hosts.engine.replicas <= spec["maxReplicas"]
    assert spec["scaleTargetRef"]["name"] == f"{stand.stack}-vllm"


def test_gateway_runs_in_the_cluster_with_its_master_key(kube):
    stand = kube.stand
    name = f"{stand.stack}-gateway"
    secret = _named(kube, ":Secret", name)
    assert set(secret.inputs["stringData"]) >= {"LITELLM_MASTER_KEY", "ENGINE_API_KEY"}
    assert "stringData" in secret.secret_inputs  # never stored in plain text in the state
    service = _named(kube, ":Service", name)
    spec = service.inputs["spec"]
    assert spec["type"] == "LoadBalancer" and [p["port"] for p in spec["ports"]] == [443]
    assert spec["loadBalancerSourceRanges"] == [str(c) for c in stand.network.public_cidrs]
    config = json.loads(_named(kube, ":ConfigMap", name).inputs["data"]["config.yaml"])
    assert config["model_list"][0]["model_name"] == stand.model.served_name
    assert kube.outputs["gateway_endpoint"].startswith("https://")


def test_vllm_service_is_cluster_internal(kube):
    service = _named(kube, ":Service", f"{kube.stand.stack}-vllm")
    assert service.inputs["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_kubernetes_resources_go_through_the_cluster_provider(kube):
    providers = kube.of_type("pulumi:providers:kubernetes")
    assert len(providers) == 1 and "kubeconfig" in providers[0].secret_inputs
    for r in kube.resources:
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider and providers[0].name in r.provider, r.name


def test_yandex_cluster_gets_a_gpu_cluster_from_the_offers_threshold():
    run = run_of(yandex_kubernetes(gpus=8))
    offer = resolve_offer(run.stand)
    assert offer.gpu_cluster_from == 8
    gpu_cluster = _one(run, ":ComputeGpuCluster")
    group = _named(run, ":KubernetesNodeGroup", "ykube-k8s-gpu")
    assert group.inputs["instanceTemplate"]["gpuSettings"]["gpuClusterId"] == gpu_cluster.id


def test_vendor_image_platform_keeps_its_driver_on_kubernetes():
    run = run_of(yandex_kubernetes(offer="yandex-gpu-standard-v3i"))
    tpl = _named(run, ":KubernetesNodeGroup", "ykube-k8s-gpu").inputs["instanceTemplate"]
    assert tpl["platformId"] == "gpu-standard-v3i"
    assert tpl["gpuSettings"]["gpuEnvironment"] == "runc_drivers_cuda"
    assert _one(run, "helm.sh/v3:Release").inputs["values"]["driver"]["enabled"] is False
