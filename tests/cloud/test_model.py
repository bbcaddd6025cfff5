"""For every stack file: what the program builds is what the stand model says."""

from __future__ import annotations

import yaml

from infra import sizing
from infra.cloud.common import engine_disk_gb
from infra.config.checks import resolve_offer

from .policy import vms

CONTRACT = {"stand", "target", "hosts", "gateway_endpoint", "mirror", "fallback_endpoint"}
HOST_KEYS = {"name", "roles", "private_address", "public_address", "gpus", "gpu", "ssh_user"}


def _expected_hosts(stand):
    on_k8s = stand.kubernetes.enabled
    return [h for h in stand.planned_hosts() if not (on_k8s and "engine" in h.roles)]


def test_outputs_keep_the_inventory_contract(run):
    assert set(run.outputs) == CONTRACT
    assert run.outputs["stand"] == run.stand.stack and run.outputs["target"] == run.stand.target
    assert set(run.outputs["mirror"]) == {"bucket", "endpoint", "access_key", "secret_key"}
    for host in run.outputs["hosts"]:
        assert set(host) == HOST_KEYS


def test_hosts_output_matches_the_planned_hosts(run):
    expected = [(h.name, list(h.roles), str(h.address), h.gpus, h.ssh_user) for h in _expected_hosts(run.stand)]
    got = [(h["name"], h["roles"], h["private_address"], h["gpus"], h["ssh_user"]) for h in run.outputs["hosts"]]
    assert got == expected


def test_engine_instances_match_replicas_gpus_and_offer(run):
    stand = run.stand
    engines = [vm for vm in vms(run) if vm.role == "engine"]
    if not stand.is_cloud or stand.kubernetes.enabled:
        assert engines == []  # existing hosts, or pods in a node group
        return
    offer = resolve_offer(stand)
    gpus = stand.hosts.engine.gpus_per_host
    assert len(engines) == stand.hosts.engine.replicas
    for vm in engines:
        assert vm.gpus == gpus
        assert (vm.platform, vm.flavor) == ((offer.platform, None) if stand.target == "yandex" else (None, offer.flavor(gpus)))


def test_engine_disk_holds_the_weights(run):
    weights = sizing.requirement(run.stand.model.params_b, run.stand.model.precision).weights_gb
    for vm in vms(run):
        if vm.role == "engine":
            assert vm.disk_gb >= weights and vm.disk_gb == engine_disk_gb(run.stand)


def test_machines_sit_at_the_planned_addresses(run):
    planned = {h.name: str(h.address) for h in run.stand.planned_hosts()}
    for vm in vms(run):
        assert vm.address == planned[vm.name]


def test_edge_host_is_sized_from_the_model(run):
    for vm in vms(run):
        if vm.role == "edge":
            assert vm.disk_gb == run.stand.hosts.edge.disk_gb and vm.gpus == 0


def test_cloud_init_readies_hosts_for_ansible(run):
    for vm in vms(run):
        doc = yaml.safe_load(vm.user_data)
        user = doc["users"][0]
        assert user["name"] == run.stand.hosts.ssh_user
        assert user["ssh_authorized_keys"] == run.stand.hosts.ssh_public_keys
        assert "python3" in doc["packages"] and doc["ssh_pwauth"] is False


def test_cloud_resources_carry_the_stand_labels(run):
    for r in run.resources:
        labels = r.inputs.get("labels") if r.type.startswith("yandex:") else None
        if r.type.startswith("openstack:") and "tags" in r.inputs:
            labels = dict(t.split("=", 1) for t in r.inputs["tags"])
        if labels is not None and r.type.endswith(("Instance", "Network", "SecurityGroup", "SecGroup", "Port")):
            assert labels["stand"] == run.stand.stack and labels["managed-by"] == "llm-stands", r.name


def test_onprem_and_local_create_nothing(run):
    if run.stand.is_cloud:
        return
    created = [r for r in run.resources if r.custom and r.type != "pulumi:pulumi:StackReference"]
    assert created == []
    assert run.outputs["gateway_endpoint"].startswith("https://")


def test_gateway_endpoint_is_https_on_the_edge_or_the_cluster(run):
    endpoint = run.outputs["gateway_endpoint"]
    assert endpoint.startswith("https://")
    edge = next(h for h in run.outputs["hosts"] if "edge" in h["roles"])
    if run.stand.is_cloud and not run.stand.kubernetes.enabled:
        assert endpoint == f"https://{edge['public_address']}"
