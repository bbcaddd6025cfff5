"""`stand plan`: offline, repeatable, for every stack; and the real entry point under mocks."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pulumi
import pytest
from rich.console import Console
from rich.table import Table

from infra.cloud.mocks import StandMocks
from infra.cloud.plan import plan, plan_as_dict, render, run_program, use_mocks
from infra.cloud.secret_refs import PlaceholderSecrets, PulumiSecrets
from infra.cloud.storage import Mirror, MirrorArgs
from infra.config.loader import REPO_ROOT, load_stand
from infra.config.secrets import SecretRef

from .conftest import STACKS
from .test_model import CONTRACT


@pytest.mark.parametrize("stack", STACKS)
def test_plan_lists_what_a_reviewer_checks(stack):
    planned = plan(stack)
    stand = load_stand(stack)
    table = render(planned, title=stack)
    assert isinstance(table, Table) and table.row_count == len(planned)
    Console(file=open("/dev/null", "w"), width=200).print(table)  # renders without error
    engines = [p for p in planned if p.type.endswith(("ComputeInstance", ":Instance")) and "engine" in p.name]
    for p in engines:
        assert p.props["gpus"] == stand.hosts.engine.gpus_per_host
        assert (p.props.get("platform") or p.props.get("flavor")) and p.props["disk_gb"] > 0
        assert p.props["public"] is False
    rules = [rule for p in planned for rule in p.props.get("ingress", [])]
    assert not [r for r in rules if r.endswith("<- 0.0.0.0/0") and not r.startswith(("tcp/443 ", "tcp/30443 "))]


@pytest.mark.parametrize("stack", STACKS)
def test_plan_as_dict_is_json_and_masks_secrets(stack):
    data = plan_as_dict(stack)
    text = json.dumps(data)
    assert set(data["outputs"]) == CONTRACT
    if load_stand(stack).is_cloud:
        assert data["outputs"]["mirror"]["secret_key"] == "[secret]"
        assert "mock-" not in json.dumps(data["outputs"]["mirror"])
    assert json.loads(text)["stack"] == stack


def test_runs_repeat_in_one_process_with_the_same_result():
    first = plan_as_dict("prod")
    run_program("fallback")  # another stack in between must not leak into the next run
    assert plan_as_dict("prod") == first


def test_plan_needs_no_secrets_from_the_environment(monkeypatch):
    for name in ("LLM_STANDS_TEST_ENGINE_KEY", "LLM_STANDS_TEST_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    run = run_program("test")  # the kubernetes stand puts keys in Secrets: placeholders here
    secret = next(r for r in run.of_type(":Secret") if r.name == "test-gateway")
    assert secret.inputs["stringData"]["LITELLM_MASTER_KEY"] == "<env:gateway.master_key>"


@pytest.mark.parametrize("stack", ["dev", "test"])
def test_the_entry_point_exports_the_contract(stack, monkeypatch):
    """`pulumi up` runs infra/cloud/__main__.py: run it as-is under mocks, with real secret resolution."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # __main__ reorders it
    for name in ("LLM_STANDS_TEST_ENGINE_KEY", "LLM_STANDS_TEST_MASTER_KEY"):
        monkeypatch.setenv(name, "from-the-environment")
    mocks = StandMocks()
    use_mocks(mocks, stack, {"yandex:folderId": "b1g"})
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(REPO_ROOT / "infra/cloud/__main__.py"), run_name="__main__")))
    assert set(settings.get_root_resource().outputs) == CONTRACT
    if stack == "test":
        secret = next(r for r in mocks.created if r.name == "test-gateway" and r.type.endswith(":Secret"))
        assert secret.inputs["stringData"]["LITELLM_MASTER_KEY"] == "from-the-environment"


@pulumi.runtime.test
def test_secure_config_values_resolve_as_secrets():
    use_mocks(StandMocks(), "prod", {"llm-stands:gateway": json.dumps({"master_key": "s3cr3t", "consumers": []})})
    ref = SecretRef(secure="v1:AAAA")
    value = PulumiSecrets().value(ref, "gateway.master_key")

    def check(args):
        plain, secret = args
        assert plain == "s3cr3t" and secret

    return pulumi.Output.all(value, pulumi.Output.from_input(value.is_secret())).apply(check)


@pulumi.runtime.test
def test_placeholders_are_secret_too():
    use_mocks(StandMocks(), "dev")
    value = PlaceholderSecrets().value(SecretRef(env="X"), "engine.api_key")
    return pulumi.Output.all(value, pulumi.Output.from_input(value.is_secret())).apply(
        lambda a: _assert(a == ["<env:engine.api_key>", True]))


@pulumi.runtime.test
def test_mirror_component_marks_its_keys_secret():
    use_mocks(StandMocks(), "dev")
    mirror = Mirror("dev", MirrorArgs("yandex", "dev", "llm-stands-dev-mirror", "https://storage.example", {}))

    def check(args):
        access, secret, is_secret = args
        assert access and secret and is_secret

    return pulumi.Output.all(mirror.access_key, mirror.secret_key,
                             pulumi.Output.from_input(mirror.secret_key.is_secret())).apply(check)


def _assert(condition: bool) -> None:
    assert condition


def test_pulumi_yaml_points_at_the_program():
    import yaml

    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "llm-stands" and project["stackConfigDir"] == "stacks"
    assert (REPO_ROOT / project["main"] / "__main__.py").exists()
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


def test_only_yandex_sdk_imports_the_yandex_package():
    cloud = Path(REPO_ROOT / "infra/cloud")
    importers = [p.name for p in cloud.glob("*.py") if "pulumi_yandex_marketmaker" in p.read_text()]
    assert importers == ["yandex_sdk.py"]
