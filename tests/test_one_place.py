"""One fact in one place: each rule is written once and imported everywhere else. These fail when
a second copy appears (a second builder of the engine's flags, a cloud SDK used outside its module,
a component branching on the target, a port of the local stand spelled out again)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CODE = [p for d in ("infra", "plugins", "roles", "playbooks", "scripts") for p in (REPO / d).rglob("*")
        if p.is_file() and p.suffix in (".py", ".yml", ".yaml", ".j2") and "__pycache__" not in p.parts]


def files_with(pattern: str) -> set[str]:
    rx = re.compile(pattern)
    return {str(p.relative_to(REPO)) for p in CODE if rx.search(p.read_text(errors="replace"))}


@pytest.mark.parametrize("pattern,owners", [
    # The engine's command line: infra/engine.py (its managed-flag list is the one other mention).
    (r"\"--tensor-parallel-size\"|\"--max-num-seqs\"|\"--max-model-len\"", {"infra/engine.py"}),
    # Cloud SDKs: one module each.
    (r"^import pulumi_openstack|^from pulumi_openstack", {"infra/cloud/providers/openstack.py"}),
    (r"import yandex_sdk", {"infra/cloud/providers/yandex.py"}),
    (r"pulumi_yandex_marketmaker", {"infra/cloud/yandex_sdk.py"}),
    # The local stand's ports and file layout.
    (r"\b(8099|8333)\b", {"infra/local/stand.py", "infra/local/pidfile.py", "infra/artifacts/s3.py",
                          "roles/model_weights/defaults/main.yml", "roles/vllm/defaults/main.yml"}),
    # The ingress table's ports.
    (r"\b9100\b|\b9400\b|\b30443\b", {"infra/ingress.py"}),
])
def test_a_fact_lives_in_one_module(pattern, owners):
    found = files_with(pattern)
    # Comments and docs may mention a fact; code elsewhere may not.
    assert found <= owners, f"{pattern!r} also in {sorted(found - owners)}"


def test_no_component_branches_on_the_cloud():
    components = ["network.py", "security.py", "hosts.py", "storage.py", "k8s_cluster.py", "program.py",
                  "k8s_stand.py", "k8s_workloads.py"]
    for name in components:
        text = (REPO / "infra" / "cloud" / name).read_text()
        assert not re.search(r"target\s*==|== \"(yandex|selectel|vk)\"|in \(\"yandex\"", text), name


def test_the_cli_has_no_bare_except():
    for path in (REPO / "infra" / "cli").glob("*.py"):
        assert "except Exception" not in path.read_text(), path.name
