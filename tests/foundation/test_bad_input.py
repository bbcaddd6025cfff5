"""Bad input is refused before anything happens: exit 2, the field named, the fix given, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def problems_of(stand_json, path) -> list[dict]:
    code, data = stand_json("check", str(path))
    assert code == 2 and data["ok"] is False
    return data["problems"]


def test_malformed_yaml(tmp_path, stand_cli):
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text("config:\n  llm-stands:target: yandex\n   llm-stands:zone: [a\n")
    result = stand_cli("check", str(path))
    assert result.exit_code == 2
    assert "not valid YAML at line 3" in result.output


def test_unknown_section_suggests_the_right_one(variant, stand_json):
    path = variant("prod", lambda c: c.update({"llm-stands:modle": c["llm-stands:model"]}))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:modle" and "llm-stands:model" in p["fix"]


def test_typo_in_nested_key_is_not_ignored(variant, stand_json):
    path = variant("prod", lambda c: c["llm-stands:engine"].update({"max_model_lenght": 4096}))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:engine.max_model_lenght" and p["message"] == "unknown key"
    assert "max_model_len" in p["fix"]


def test_unknown_gpu_type(variant, stand_json):
    path = variant("dev", lambda c: c["llm-stands:hosts"]["engine"].update({"gpu": "A1000"}))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:hosts.engine.gpu" and "unknown GPU type A1000" in p["message"]
    assert "A100-80G" in p["fix"]


def test_model_that_does_not_fit(variant, stand_json):
    path = variant("dev", lambda c: c["llm-stands:model"].update({"params_b": 235, "precision": "bf16"}))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:model" and "needs 564 GB" in p["message"] and "has 72 GB" in p["message"]
    assert "8 x A100-80G" in p["fix"]


def test_restricted_licence_refused_in_prod_until_accepted(variant, stand_json):
    to_llama = lambda c: c["llm-stands:model"].update({"family": "llama", "licence": "llama-community"})  # noqa: E731
    (p,) = problems_of(stand_json, variant("prod", to_llama))
    assert p["field"] == "llm-stands:model.licence" and "restricted licence llama-community" in p["message"]
    assert "licence_accepted: llama-community" in p["fix"]

    def accepted(c):
        to_llama(c)
        c["llm-stands:model"]["licence_accepted"] = "llama-community"

    code, data = stand_json("check", str(variant("prod", accepted)))
    assert code == 0 and data["licence"] == {"id": "llama-community", "restricted": True, "accepted": True, "allowed": True}


def test_restricted_licence_allowed_in_dev(variant, stand_json):
    path = variant("dev", lambda c: c["llm-stands:model"].update({"family": "gemma", "licence": "gemma-terms"}))
    code, data = stand_json("check", str(path))
    assert code == 0 and data["licence"]["restricted"] and data["licence"]["allowed"]


def test_unknown_licence_refused_in_fallback(variant, stand_json):
    path = variant("fallback", lambda c: c["llm-stands:model"].update({"family": None, "licence": "some-eula"}))
    (p,) = problems_of(stand_json, path)
    assert "unknown licence some-eula" in p["message"]


def test_secret_in_plain_text(variant, stand_json):
    path = variant("prod", lambda c: c["llm-stands:gateway"].update({"master_key": "sk-1234"}))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:gateway.master_key" and "plain text" in p["message"]
    assert "pulumi config set --secret" in p["fix"]


def test_pulumi_secret_form_is_accepted(variant, stand_json):
    path = variant("prod", lambda c: c["llm-stands:gateway"].update({"master_key": {"secure": "v1:abc=="}}))
    code, _ = stand_json("check", str(path))
    assert code == 0


def test_ssh_open_to_the_world(variant, stand_json):
    path = variant("prod", lambda c: c["llm-stands:network"].update({"admin_cidrs": ["0.0.0.0/0"]}))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:network.admin_cidrs" and "0.0.0.0/0" in p["message"]


def test_every_problem_is_reported_at_once(variant, stand_json):
    def many(c):
        c["llm-stands:network"]["admin_cidrs"] = ["0.0.0.0/0"]
        c["llm-stands:gateway"]["master_key"] = "plain"
        c["llm-stands:engine"]["max_model_lenght"] = 1

    fields = {p["field"] for p in problems_of(stand_json, variant("prod", many))}
    assert fields == {"llm-stands:network.admin_cidrs", "llm-stands:gateway.master_key",
                      "llm-stands:engine.max_model_lenght"}


def test_unpinned_hf_source_and_offline_hosts(variant, stand_json):
    path = variant("dev", lambda c: c["llm-stands:model"].update({"source": "hf://Qwen/Qwen3-8B"}))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:model.source" and "pinned revision" in p["message"]

    def pinned(c):
        c["llm-stands:model"]["source"] = "hf://Qwen/Qwen3-8B@9c925d64d72725edaf899c6cb9c377fd0709d9c5"

    (p,) = problems_of(stand_json, variant("dev", pinned))
    assert "offline hosts cannot download" in p["message"] and "stand mirror dev" in p["fix"]


def test_missing_stack_lists_known_ones(stand_json):
    code, data = stand_json("check", "prdo")
    assert code == 2 and "prod" in data["problems"][0]["fix"]


def test_bad_cli_argument(stand_json):
    code, data = stand_json("size", "--params", "235", "--precision", "fp6")
    assert code == 2 and "--precision" in data["error"] and "bf16" in data["error"]


def test_console_script_prints_no_traceback(variant):
    path = variant("prod", lambda c: c["llm-stands:network"].update({"admin_cidrs": ["0.0.0.0/0"]}))
    out = subprocess.run([sys.executable, "-m", "infra.cli", "check", str(path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout and "network.admin_cidrs" in out.stderr


@pytest.mark.parametrize("change, field", [
    (lambda c: c["llm-stands:engine"].update({"tensor_parallel_size": 3}), "llm-stands:engine.tensor_parallel_size"),
    (lambda c: c["llm-stands:hosts"]["engine"].update({"gpu": "H100-80G"}), "llm-stands:hosts.engine.gpu"),
    (lambda c: c["llm-stands:gateway"].update({"fallback_stack": "nope"}), "llm-stands:gateway.fallback_stack"),
    (lambda c: c["llm-stands:engine"].update({"extra_args": ["--port=9000"]}), "llm-stands:engine.extra_args"),
])
def test_cross_field_problems(variant, stand_json, change, field):
    assert [p["field"] for p in problems_of(stand_json, variant("prod", change))] == [field]


def test_onprem_mirror_needs_its_keys(variant, stand_json):
    path = variant("onprem", lambda c: c["llm-stands:artifacts"].pop("secret_key"))
    (p,) = problems_of(stand_json, path)
    assert p["field"] == "llm-stands:artifacts.access_key" and "access_key and secret_key" in p["message"]


def test_cloud_mirror_keys_come_from_pulumi(variant, stand_json):
    def keys(c):
        c["llm-stands:artifacts"] = {"access_key": {"env": "A"}, "secret_key": {"env": "B"}}

    (p,) = problems_of(stand_json, variant("prod", keys))
    assert "Pulumi creates the mirror's keys" in p["message"] and "remove" in p["fix"]
