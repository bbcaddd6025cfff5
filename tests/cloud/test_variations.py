"""Every target x kubernetes path, from in-memory stands (parse_stand), with the same policy checks."""

from __future__ import annotations

import pytest

from infra.cloud.mocks import fake_id
from infra.config.checks import resolve_offer

from . import test_policy as policy_checks
from .conftest import run_of, variation
from .policy import ingress, vms

KEYS = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKey000000000000000000000000000000000 ops@example"]
VK_ENGINE = {"gpu": "A100-80G", "gpus_per_host": 2, "replicas": 3}
# (base stack file, target section values) -> a stand per cloud; kubernetes toggled on top.
CLOUDS = {
    "yandex": ("dev", {}),
    "selectel": ("fallback", {}),
    "vk": ("test", {"hosts": {"engine": VK_ENGINE, "ssh_public_keys": KEYS}}),
}


@pytest.fixture(params=[(cloud, k8s) for cloud in CLOUDS for k8s in (False, True)],
                ids=lambda p: f"{p[0]}-{'k8s' if p[1] else 'vms'}")
def matrix(request):
    cloud, on_k8s = request.param
    base, sections = CLOUDS[cloud]
    return run_of(variation(base, f"{cloud}-{'k8s' if on_k8s else 'vms'}",
                            kubernetes={"enabled": on_k8s}, **sections))


def test_every_path_runs_and_keeps_the_policy(matrix):
    """Each policy test of test_policy.py, applied to this path."""
    checks = [f for name, f in vars(policy_checks).items() if name.startswith("test_") and callable(f)]
    assert len(checks) >= 6
    for check in checks:
        check(matrix)
    assert ingress(matrix)


def test_every_path_builds_its_engines(matrix):
    stand = matrix.stand
    offer = resolve_offer(stand)
    engines = [vm for vm in vms(matrix) if vm.role == "engine"]
    if stand.kubernetes.enabled:
        assert engines == []
        assert matrix.of_type(":KubernetesNodeGroup") or matrix.of_type("/nodeGroup:NodeGroup")
        assert matrix.of_type(":HorizontalPodAutoscaler")
    else:
        assert len(engines) == stand.hosts.engine.replicas
        assert {vm.platform or vm.flavor for vm in engines} == {offer.platform or offer.flavor(stand.hosts.engine.gpus_per_host)}


def test_yandex_gpu_cluster_from_the_offers_threshold():
    hosts = {"engine": {"gpu": "A100-80G", "gpus_per_host": 8, "replicas": 2}, "ssh_public_keys": KEYS}
    run = run_of(variation("dev", "big", hosts=hosts))
    clusters = run.of_type(":ComputeGpuCluster")
    assert len(clusters) == 1 and clusters[0].inputs["interconnectType"] == "infiniband"
    engines = [vm for vm in run.of_type(":ComputeInstance") if vm.inputs["labels"]["role"] == "engine"]
    assert len(engines) == 2 and all(vm.inputs["gpuClusterId"] == clusters[0].id for vm in engines)
    assert run_of("dev").of_type(":ComputeGpuCluster") == []  # one A100 needs none


def test_yandex_vendor_image_platform_boots_the_vendor_image():
    hosts = {"engine": {"gpu": "A100-80G", "gpus_per_host": 1, "offer": "yandex-gpu-standard-v3i"},
             "ssh_public_keys": KEYS, "image": "ubuntu-2404-lts"}
    run = run_of(variation("dev", "vendor", hosts=hosts))
    images = {vm.inputs["labels"]["role"]: vm.inputs["bootDisk"]["initializeParams"]["imageId"]
              for vm in run.of_type(":ComputeInstance")}
    engine = next(vm for vm in run.of_type(":ComputeInstance") if vm.inputs["labels"]["role"] == "engine")
    assert engine.inputs["platformId"] == "gpu-standard-v3i"
    # The mocked image lookup returns an id derived from the family: the engine's is the vendor's,
    # the edge keeps hosts.image.
    assert images["engine"] == fake_id("yandex:index/getComputeImage:getComputeImage", "ubuntu-2004-lts-a100")
    assert images["edge"] == fake_id("yandex:index/getComputeImage:getComputeImage", "ubuntu-2404-lts")


def test_openstack_disk_is_a_boot_volume_from_the_image():
    run = run_of("fallback")
    for vm in run.of_type("compute/instance:Instance"):
        device = vm.inputs["blockDevices"][0]
        assert (device["sourceType"], device["destinationType"], device["bootIndex"]) == ("image", "volume", 0)
