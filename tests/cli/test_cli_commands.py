"""The CLI wiring of `stand plan` and `stand backend init` (their logic is tested in tests/cloud, tests/backend)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.local.seaweed import SeaweedPorts, SeaweedServer


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def test_plan_json_lists_the_prod_engines():
    result = run("plan", "prod", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    engines = [r for r in data["resources"] if r["type"].endswith("ComputeInstance") and "engine" in r["name"]]
    assert [(e["name"], e["gpus"], e["platform"]) for e in engines] == [
        ("prod-engine-1", 4, "gpu-standard-v3"), ("prod-engine-2", 4, "gpu-standard-v3")]
    assert data["outputs"]["mirror"]["secret_key"] == "[secret]"


def test_plan_refuses_a_bad_stack(tmp_path):
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  llm-stands:target: mars\n")
    result = run("plan", str(bad), "--json")
    assert result.exit_code == 2
    assert "llm-stands:target" in {p["field"] for p in json.loads(result.stdout)["problems"]}


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    server = SeaweedServer(tmp_path_factory.mktemp("cli-s3"), ports=SeaweedPorts.free(), name="cli-s3")
    endpoint = server.start()
    yield endpoint
    server.stop()


def test_backend_init_prints_login_line(seaweed):
    env = {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key}
    result = run("backend", "init", "--target", "selectel", "--bucket", "cli-state", "--endpoint", seaweed.url,
                 "--json", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["login"].startswith("pulumi login 's3://cli-state?")


def test_backend_init_wrong_key_is_one_clear_line(seaweed):
    env = {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": "wrong" * 8}
    result = run("backend", "init", "--target", "vk", "--bucket", "cli-state", "--endpoint", seaweed.url, env=env)
    assert result.exit_code == 1
    assert "secret" in result.output.lower() and "Traceback" not in result.output


def test_backend_init_needs_keys():
    result = run("backend", "init", "--target", "yandex", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert result.exit_code == 2 and "AWS_ACCESS_KEY_ID" in result.output
