"""The stands inventory plugin, run through the real ansible-inventory / ansible-playbook CLIs.

onprem comes from the model alone; prod from an outputs.json captured from the Pulumi program run
under mocks (fixtures/prod.outputs.json, written by `run_program("prod").outputs`; see
test_fixture_matches_the_program_under_mocks). Variables must be exactly what infra.ansible_vars maps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra import ansible_vars as av
from infra.config.contract import StackOutputs
from infra.config.loader import REPO_ROOT, load_stand
from infra.config.outputs import derived_outputs, model_outputs

BIN = Path(sys.executable).parent
FIXTURE = Path(__file__).parent / "fixtures" / "prod.outputs.json"
PROD_MIRROR_SECRET = json.loads(FIXTURE.read_text())["mirror"]["secret_key"]


def ansible(tool: str, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "STAND_INVENTORY_PULUMI": "false",
                "ANSIBLE_NOCOLOR": "1", **env}
    res = subprocess.run([str(BIN / tool), *args], cwd=REPO_ROOT, env=full_env, capture_output=True, text=True,
                         timeout=120)
    if check:
        assert res.returncode == 0, f"{tool} {args} failed:\n{res.stdout}\n{res.stderr}"
    return res


def plain(value):
    """ansible-inventory marks untrusted strings as {"__ansible_unsafe": "..."}; compare values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@pytest.fixture
def state(tmp_path):
    """An empty .stand dir of our own, so the repository's real one is never read."""
    return tmp_path / "stand-state"


@pytest.fixture
def prod_state(state):
    (state / "prod").mkdir(parents=True)
    shutil.copy(FIXTURE, state / "prod" / "outputs.json")
    return state


def listing(stacks: str, state: Path) -> dict:
    res = ansible("ansible-inventory", "-i", "inventory/stands.yml", "--list", "--export",
                  env={"STAND_STACKS": stacks, "STAND_STATE_DIR": str(state)})
    return json.loads(res.stdout)


def graph(stacks: str, state: Path) -> str:
    return ansible("ansible-inventory", "-i", "inventory/stands.yml", "--graph",
                   env={"STAND_STACKS": stacks, "STAND_STATE_DIR": str(state)}).stdout


def expected_vars(stack: str, outputs: dict | None = None):
    stand = load_stand(stack)
    contract = StackOutputs.model_validate(outputs) if outputs else derived_outputs(stand)
    return (av.group_vars(stand, av.lookup_resolver(stand), contract),
            {h.name: av.host_vars(stand, h, contract) for h in contract.hosts})


def children(inv: dict, group: str) -> set[str]:
    return set(inv.get(group, {}).get("children", []))


def hosts_in(inv: dict, group: str) -> set[str]:
    return set(inv.get(group, {}).get("hosts", []))


# -- onprem: from the model -----------------------------------------------------------------------


def test_onprem_graph_has_engine_edge_and_monitoring_groups(state):
    text = graph("onprem", state)
    assert "@onprem:" in text
    for group in ("onprem_engine", "onprem_edge", "onprem_monitoring", "engine", "edge", "monitoring"):
        assert f"@{group}:" in text, text
    inv = listing("onprem", state)
    assert children(inv, "onprem") == {"onprem_engine", "onprem_edge", "onprem_monitoring"}
    assert hosts_in(inv, "onprem_engine") == {"gpu-01", "gpu-02"}
    assert hosts_in(inv, "onprem_edge") == hosts_in(inv, "onprem_monitoring") == {"edge-01"}
    assert children(inv, "engine") == {"onprem_engine"}
    assert children(inv, "monitoring") == {"onprem_monitoring"}


def test_onprem_vars_are_the_mapping_of_the_model(state):
    inv = listing("onprem", state)
    group, hosts = expected_vars("onprem")
    assert plain(inv["onprem"]["vars"]) == group
    assert {name: plain(v) for name, v in inv["_meta"]["hostvars"].items()} == hosts
    gpu01 = hosts["gpu-01"]
    assert (gpu01["ansible_host"], gpu01["ansible_user"], gpu01["vllm_listen_address"]) == \
        ("192.0.2.11", "ubuntu", "192.0.2.11")
    assert gpu01["nvidia_driver_expected_gpus"] == 4
    assert group["vllm_tensor_parallel_size"] == 4 and "32768" in gpu01["vllm_args"]
    assert group["nvidia_driver_expected_arch"] == "ada"


def test_secrets_are_lookups_resolved_only_when_used(state):
    secret = "engine-key-that-must-not-be-printed"
    env = {"STAND_STACKS": "onprem", "STAND_STATE_DIR": str(state), "LLM_STANDS_ONPREM_ENGINE_KEY": secret}
    listed = ansible("ansible-inventory", "-i", "inventory/stands.yml", "--list", env=env).stdout
    assert secret not in listed
    assert "lookup('llm_stands_secret', 'engine.api_key', stack=stand_secret_source)" in listed
    used = ansible("ansible", "-i", "inventory/stands.yml", "gpu-01", "-m", "debug", "-a", "var=vllm_api_key",
                   env=env).stdout
    assert secret in used
    missing = ansible("ansible", "-i", "inventory/stands.yml", "gpu-01", "-m", "debug", "-a", "var=vllm_api_key",
                      env={**env, "LLM_STANDS_ONPREM_ENGINE_KEY": ""}, check=False)
    assert missing.returncode != 0
    assert "LLM_STANDS_ONPREM_ENGINE_KEY is not set" in missing.stdout + missing.stderr


def test_site_yml_limited_to_onprem_lists_its_hosts(state):
    out = ansible("ansible-playbook", "playbooks/site.yml", "-l", "onprem", "--list-hosts",
                  env={"STAND_STATE_DIR": str(state)}).stdout
    plays = out.split("play #")[1:]
    base = plays[0]
    assert {"gpu-01", "gpu-02", "edge-01"} <= set(base.split())
    assert "local-edge-1" not in out  # the limit keeps other stands out
    engines = next(p for p in plays if "pattern: ['engine']" in p)
    assert {"gpu-01", "gpu-02"} <= set(engines.split()) and "edge-01" not in engines.split()


# -- prod: from the stack outputs -------------------------------------------------------------------


def test_prod_from_outputs_graph_and_vars(prod_state):
    text = graph("prod", prod_state)
    assert "@prod_engine:" in text and "prod-engine-2" in text
    inv = listing("prod", prod_state)
    assert hosts_in(inv, "prod_engine") == {"prod-engine-1", "prod-engine-2"}
    assert hosts_in(inv, "prod_edge") == {"prod-edge-1"}

    outputs = json.loads(FIXTURE.read_text())
    group, hosts = expected_vars("prod", outputs)
    assert plain(inv["prod"]["vars"]) == group
    assert {name: plain(v) for name, v in inv["_meta"]["hostvars"].items()} == hosts
    # Engines have no public address: reached through the edge host, listening privately.
    engine = hosts["prod-engine-1"]
    assert engine["ansible_host"] == "10.140.0.11"
    assert engine["ansible_ssh_common_args"] == f"-o ProxyJump=ubuntu@{json.loads(FIXTURE.read_text())['hosts'][0]['public_address']}"
    assert engine["vllm_listen_address"] == "10.140.0.11"
    edge_public = json.loads(FIXTURE.read_text())["hosts"][0]["public_address"]
    assert hosts["prod-edge-1"]["ansible_host"] == edge_public
    assert "ansible_ssh_common_args" not in hosts["prod-edge-1"]
    assert group["model_weights_s3_endpoint"] == "https://storage.yandexcloud.net"
    assert group["stand_fallback_endpoint"] == json.loads(FIXTURE.read_text())["fallback_endpoint"]
    assert group["stand_engine_endpoints"] == ["http://10.140.0.11:8000", "http://10.140.0.12:8000"]
    assert PROD_MIRROR_SECRET not in json.dumps(inv)  # the mirror key is a lookup too


def test_prod_mirror_secret_lookup_reads_the_outputs(prod_state):
    out = ansible("ansible", "-i", "inventory/stands.yml", "prod-engine-1", "-m", "debug",
                  "-a", "var=model_weights_s3_secret_key",
                  env={"STAND_STACKS": "prod", "STAND_STATE_DIR": str(prod_state)}).stdout
    assert PROD_MIRROR_SECRET in out


def test_site_yml_limited_to_prod_lists_its_hosts(prod_state):
    out = ansible("ansible-playbook", "playbooks/site.yml", "-l", "prod", "--list-hosts",
                  env={"STAND_STATE_DIR": str(prod_state)}).stdout
    assert {"prod-edge-1", "prod-engine-1", "prod-engine-2"} <= set(out.split())
    assert "gpu-01" not in out


def test_cloud_stack_without_outputs_is_skipped_with_a_warning(state):
    res = ansible("ansible-inventory", "-i", "inventory/stands.yml", "--list", "--export",
                  env={"STAND_STACKS": "onprem,prod", "STAND_STATE_DIR": str(state)})
    inv = json.loads(res.stdout)
    assert "prod" not in inv and hosts_in(inv, "onprem_engine") == {"gpu-01", "gpu-02"}
    assert "stand prod" in res.stderr and "no outputs yet" in res.stderr


def test_broken_outputs_are_an_error_when_named_and_a_warning_otherwise(state):
    (state / "prod").mkdir(parents=True)
    broken = json.loads(FIXTURE.read_text())
    del broken["hosts"][0]["private_address"]
    (state / "prod" / "outputs.json").write_text(json.dumps(broken))

    named = ansible("ansible-inventory", "-i", "inventory/stands.yml", "--list",
                    env={"STAND_STACKS": "prod", "STAND_STATE_DIR": str(state)}, check=False)
    text = named.stdout + named.stderr
    assert "outputs do not match the contract (hosts.0.private_address" in text
    assert "prod-engine-1" not in named.stdout

    everything = ansible("ansible-inventory", "-i", "inventory/stands.yml", "--list", "--export",
                         env={"STAND_STACKS": "", "STAND_STATE_DIR": str(state)})
    inv = json.loads(everything.stdout)
    assert "prod" not in inv and "onprem" in inv
    assert "outputs do not match the contract" in everything.stderr


def test_outputs_of_another_stand_are_refused(state):
    (state / "prod").mkdir(parents=True)
    other = json.loads(FIXTURE.read_text()) | {"stand": "dev"}
    (state / "prod" / "outputs.json").write_text(json.dumps(other))
    res = ansible("ansible-inventory", "-i", "inventory/stands.yml", "--list",
                  env={"STAND_STACKS": "prod", "STAND_STATE_DIR": str(state)}, check=False)
    assert "outputs are of stand 'dev', not 'prod'" in res.stdout + res.stderr


def test_fixture_matches_the_program_under_mocks():
    """The fixture is what the Pulumi program exports for prod (run offline under mocks)."""
    plan = pytest.importorskip("infra.cloud.plan")
    live = plan.run_program("prod").outputs
    fixture = json.loads(FIXTURE.read_text())
    assert StackOutputs.model_validate(live) == StackOutputs.model_validate(fixture), (
        "the program's outputs changed: regenerate tests/inventory/fixtures/prod.outputs.json from "
        "infra.cloud.plan.run_program('prod').outputs")


@pytest.mark.parametrize("stack", ["onprem", "local"])
def test_outputs_derived_from_the_model_equal_the_programs(stack, tmp_path, monkeypatch):
    """No Pulumi run for onprem/local: the model derives the same outputs the program exports (the
    local driver then adds what only the running stand knows: its endpoint, keys, wheelhouse)."""
    plan = pytest.importorskip("infra.cloud.plan")
    monkeypatch.setenv("STAND_STATE_DIR", str(tmp_path))  # no local S3 keys: both say None
    assert model_outputs(load_stand(stack)) == StackOutputs.model_validate(plan.run_program(stack).outputs)


def test_local_from_the_drivers_outputs(state, monkeypatch):
    """The local driver's outputs.json (written by its own code) feeds the inventory: mirror keys,
    the HTTP wheelhouse and the hosts' SSH key come from it."""
    from infra.config.outputs import write_outputs
    from infra.local.stand import LocalLayout, outputs

    monkeypatch.setenv("STAND_STATE_DIR", str(state))
    stand = load_stand("local")
    key = LocalLayout(stand).ssh_key
    key.parent.mkdir(parents=True)
    key.write_text("not a real key\n")
    creds = state / "local" / "seaweedfs" / "credentials.json"  # where the local S3 server keeps its keys
    creds.parent.mkdir(parents=True)
    creds.write_text(json.dumps({"access_key": "LOCALACCESSKEY", "secret_key": "local-secret-key"}))
    write_outputs(outputs(stand))

    inv = listing("local", state)
    group = plain(inv["local"]["vars"])
    assert group["vllm_pip_requirements"] == "http://10.213.0.1:8099/engine.txt"
    assert group["vllm_pip_find_links"] == group["model_weights_pip_find_links"] == "http://10.213.0.1:8099/"
    assert group["ansible_ssh_private_key_file"] == str(key)
    assert group["model_weights_s3_endpoint"] == "http://10.213.0.1:8333"
    assert "local-secret-key" not in json.dumps(inv)
    assert hosts_in(inv, "local_engine") == {"local-engine-1"}
    out = ansible("ansible", "-i", "inventory/stands.yml", "local-engine-1", "-m", "debug",
                  "-a", "var=model_weights_s3_secret_key", env={"STAND_STACKS": "local", "STAND_STATE_DIR": str(state)})
    assert "local-secret-key" in out.stdout
