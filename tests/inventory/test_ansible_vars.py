"""infra.ansible_vars: the one mapping from the Stand model to the roles' variables."""

from __future__ import annotations

import copy
import stat
from pathlib import Path

import pytest
import yaml

from infra import ansible_vars as av
from infra.config.contract import Mirror, StackOutputs
from infra.config.loader import REPO_ROOT, STACKS_DIR, load_stand, parse_stand, stack_name
from infra.config.outputs import OutputsError, derived_outputs, model_outputs
from infra.config.secrets import SecretRef, SecretUnavailable, eager_resolver, resolve_secret, secret_paths

STACKS = sorted(stack_name(p) for p in STACKS_DIR.glob("Pulumi.*.yaml"))
ROLE_PREFIXES = {"common_": "common", "model_weights_": "model_weights", "vllm_": "vllm",
                 "nvidia_driver_": "nvidia_driver"}


def declared(role: str) -> set[str]:
    spec = yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return set(spec["argument_specs"]["main"]["options"])


def all_vars(stack: str) -> list[dict]:
    stand = load_stand(stack)
    outputs = model_outputs(stand)
    group = av.group_vars(stand, av.lookup_resolver(stand), outputs)
    return [group, *(av.host_vars(stand, h, outputs) for h in outputs.hosts)]


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STAND_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_role_variable_set_is_declared_by_its_role(stack):
    for variables in all_vars(stack):
        for name in variables:
            role = next((r for p, r in ROLE_PREFIXES.items() if name.startswith(p)), None)
            if role:
                assert name in declared(role), f"{stack}: {name} is not in roles/{role}/meta/argument_specs.yml"


def test_values_come_from_the_model():
    stand = load_stand("prod")
    outputs = model_outputs(stand)
    group = av.group_vars(stand, av.lookup_resolver(stand), outputs)
    engine = av.host_vars(stand, outputs.with_role("engine")[0], outputs)
    args = engine["vllm_args"]
    assert group["vllm_version"] == stand.engine.version
    assert args[args.index("--max-model-len") + 1] == "32768"
    assert args[args.index("--max-num-seqs") + 1] == "128"
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.92"
    assert args[args.index("--tensor-parallel-size") + 1] == "4" and group["vllm_tensor_parallel_size"] == 4
    assert args[args.index("--dtype") + 1] == "auto"  # AWQ checkpoints carry their own dtype
    assert "--enforce-eager" not in args
    assert args[args.index("--model") + 1] == group["vllm_model_path"] == "/srv/models/qwen3-235b-a22b/current"
    assert args[args.index("--host") + 1] == engine["vllm_listen_address"] == "10.140.0.11"
    assert group["model_weights_source"] == stand.model.source
    assert group["model_weights_name"] == group["vllm_served_model_name"] == "qwen3-235b-a22b"
    assert group["model_weights_s3_region"] == "ru-central1"
    assert engine["common_admin_cidrs"] == ["203.0.113.0/24", "10.140.0.5/32"]  # admins, and the edge bastion
    edge = av.host_vars(stand, outputs.edge, outputs)
    assert edge["common_admin_cidrs"] == ["203.0.113.0/24"]
    assert group["nvidia_driver_expected_arch"] == "ampere"
    assert group["nvidia_driver_vendor_image_driver"] is None
    assert group["vllm_api_key"] == "{{ lookup('llm_stands_secret', 'engine.api_key', stack=stand_secret_source) }}"
    assert group["stand_secret_source"] == "prod"


def test_local_stand_vars():
    stand = load_stand("local")
    outputs = derived_outputs(stand)
    group = av.group_vars(stand, av.lookup_resolver(stand), outputs)
    assert group["vllm_device"] == "cpu"
    assert group["vllm_env"]["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert group["vllm_pip_find_links"] == "http://10.213.0.1:8099/"
    assert group["vllm_pip_trusted_host"] == "10.213.0.1"
    assert group["model_weights_s3_endpoint"] == "http://10.213.0.1:8333"
    hosts = {h.name: av.host_vars(stand, h, outputs) for h in outputs.hosts}
    engine = hosts["local-engine-1"]
    args = engine["vllm_args"]
    assert "--enforce-eager" in args and args[args.index("--dtype") + 1] == "float32"  # engine.dtype wins over bf16
    assert engine["ansible_host"] == "10.213.0.11" and engine["ansible_user"] == "root"
    assert engine["nvidia_driver_expected_gpus"] == 0
    assert "StrictHostKeyChecking=no" in engine["ansible_ssh_common_args"]
    assert engine["common_admin_cidrs"] == ["10.213.0.0/24"]
    assert {r["port"]: r["sources"] for r in engine["common_firewall_rules"]} == {
        8000: ["10.213.0.0/24"], 9100: ["10.213.0.0/24"]}
    edge_ports = {r["port"]: r["sources"] for r in hosts["local-edge-1"]["common_firewall_rules"]}
    assert edge_ports == {443: ["10.213.0.0/24"], 4000: ["10.213.0.0/24"], 9100: ["10.213.0.0/24"]}
    assert "vllm_args" not in hosts["local-edge-1"]


@pytest.mark.parametrize("stack", ["onprem", "local"])
def test_outputs_derived_from_the_model_follow_the_contract(stack):
    stand = load_stand(stack)
    outputs = derived_outputs(stand)
    assert StackOutputs.model_validate(outputs.as_json()) == outputs and outputs.stand == stack
    assert [h.name for h in outputs.hosts] == [p.name for p in stand.planned_hosts()]


def test_vendor_image_offer_keeps_its_driver():
    config = yaml.safe_load((STACKS_DIR / "Pulumi.prod.yaml").read_text())["config"]
    config = copy.deepcopy(config)
    config["llm-stands:hosts"]["engine"]["offer"] = "yandex-gpu-standard-v3i"
    stand = parse_stand(config, "prod")
    group = av.group_vars(stand, av.lookup_resolver(stand), model_outputs(stand))
    assert group["nvidia_driver_vendor_image_driver"] == "535"


def test_secret_paths_are_pulumi_config_paths():
    paths = secret_paths(load_stand("prod"))
    assert set(paths) == {"engine.api_key", "gateway.master_key", "gateway.consumers[0].key",
                          "gateway.consumers[1].key"}
    assert paths["gateway.consumers[1].key"] == SecretRef(env="LLM_STANDS_PROD_KEY_KB")


def test_eager_resolver_resolves_env_generated_and_output_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_STANDS_ONPREM_ENGINE_KEY", "from-env")
    monkeypatch.setenv("LLM_STANDS_ONPREM_MIRROR_ACCESS_KEY", "AK")
    monkeypatch.setenv("LLM_STANDS_ONPREM_MIRROR_SECRET_KEY", "SK")
    onprem = load_stand("onprem")
    group = av.group_vars(onprem, eager_resolver(onprem), model_outputs(onprem))
    assert (group["vllm_api_key"], group["model_weights_s3_access_key"], group["model_weights_s3_secret_key"]) == \
        ("from-env", "AK", "SK")

    local = load_stand("local")
    running = derived_outputs(local).model_copy(update={"mirror": Mirror(bucket="b", endpoint="e", access_key="a",
                                                                        secret_key="s")})
    first = av.group_vars(local, eager_resolver(local, running), running)
    assert first["model_weights_s3_secret_key"] == "s"
    key_file = Path(tmp_path / "state" / "local" / "secrets" / "engine.api_key")
    assert key_file.read_text().strip() == first["vllm_api_key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert resolve_secret("local", "engine.api_key") == first["vllm_api_key"]  # stable across runs


def test_missing_mirror_keys_say_where_they_come_from(monkeypatch):
    monkeypatch.delenv("LLM_STANDS_ONPREM_MIRROR_SECRET_KEY", raising=False)
    with pytest.raises(SecretUnavailable, match="environment variable LLM_STANDS_ONPREM_MIRROR_SECRET_KEY is not set"):
        resolve_secret("onprem", "artifacts.secret_key")
    with pytest.raises(SecretUnavailable, match="no secret at engine.api_kee"):
        resolve_secret("onprem", "engine.api_kee")
    with pytest.raises(OutputsError, match="mirror.secret_key is empty"):
        resolve_secret("local", "outputs.mirror.secret_key")  # the local S3 server has not generated keys yet
