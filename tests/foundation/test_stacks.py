"""Every example stack is complete and valid, and `stand check` summarises it."""

from __future__ import annotations

import pytest

from infra.config import load_stand
from infra.config.loader import STACKS_DIR

EXAMPLES = ["local", "dev", "test", "prod", "fallback", "onprem"]


def test_all_examples_exist():
    assert sorted(p.name.split(".")[1] for p in STACKS_DIR.glob("Pulumi.*.yaml")) == sorted(EXAMPLES)


@pytest.mark.parametrize("stack", EXAMPLES)
def test_example_passes_check(stand_json, stack):
    code, data = stand_json("check", stack)
    assert code == 0, data
    assert data["stack"] == stack and data["fit"]["headroom_gb"] >= 0 and data["licence"]["allowed"]


def test_check_accepts_a_path(stand_cli):
    result = stand_cli("check", str(STACKS_DIR / "Pulumi.prod.yaml"))
    assert result.exit_code == 0
    assert "target yandex" in result.stdout and "licence: Apache-2.0: allowed" in result.stdout


def test_planned_hosts_are_deterministic():
    prod = load_stand("prod")
    assert [(h.name, str(h.address), h.gpus) for h in prod.planned_hosts()] == [
        ("prod-edge-1", "10.140.0.5", 0), ("prod-engine-1", "10.140.0.11", 4), ("prod-engine-2", "10.140.0.12", 4)]
    onprem = load_stand("onprem")
    assert [h.name for h in onprem.planned_hosts()] == ["gpu-01", "gpu-02", "edge-01"]


def test_defaults_live_in_the_model():
    local = load_stand("local")
    assert local.engine.port == 8000 and local.tensor_parallel_size == 1
    assert local.mirror_bucket == "llm-stands-local-mirror"
