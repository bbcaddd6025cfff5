"""The local stand end to end, on one real stand (see conftest.py): `stand up` through the CLI,
its second run converging, `stand status`, then the hosts and the engine in depth (common,
model_weights, vllm), then the tests that disturb the engine, and LAST `stand down`.

Tests run in file order and share the stand: keep the disturbing ones at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.local.pidfile import port_open

from .conftest import REPO, SUBNET, stand_cli

pytestmark = [pytest.mark.hosts, pytest.mark.engine]

ENV_FILE = "/etc/vllm/vllm.env"
UNIT = "vllm"
RESTART_DEADLINE = 600.0  # bounded wait for systemd to bring the engine back (not asserted)
PHASES = ("==> hosts", "==> artifact store", "==> model mirror", "==> site.yml", "==> smoke")


# -- helpers ---------------------------------------------------------------------------------------


def http(method: str, url: str, body: dict | None = None, key: str | None = None, timeout: float = 120.0):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def chat(e2e, content: str = "Say hello in one short sentence.", **extra) -> dict:
    body = {"model": e2e.model_name, "messages": [{"role": "user", "content": content}],
            "max_tokens": 16, "temperature": 0, **extra}
    status, raw = http("POST", f"{e2e.base_url}/v1/chat/completions", body, key=e2e.api_key)
    assert status == 200, raw[:500]
    return json.loads(raw)


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {UNIT}").strip())


def healthy(e2e) -> bool:
    try:
        return http("GET", f"{e2e.base_url}/health", timeout=5)[0] == 200
    except OSError:
        return False


def model_dir(e2e) -> str:
    return f"/srv/models/{e2e.model_name}"


# -- stand up, again, status -----------------------------------------------------------------------


def test_up_answers_with_a_real_completion(e2e, first_up):
    data, progress = first_up
    assert data["ok"] and data["gateway_endpoint"] == f"http://{SUBNET}.11:8000"
    assert len(data["answer"].split()) >= 3  # the model's own words, not an error
    # Progress is shown per phase on stderr.
    for phase in PHASES:
        assert phase in progress, phase
    # A fresh stand: site.yml reached every host and installed everything on each.
    changed = data["site_changed"]
    assert sorted(changed) == sorted(h.name for h in e2e.stand.planned_hosts()) == ["e2e-edge-1", "e2e-engine-1"]
    assert all(n > 0 for n in changed.values()), changed
    assert "mirror" not in data  # the mirror's keys stay in outputs.json


def test_second_up_converges_with_no_change(e2e, first_up):
    result = stand_cli("up", str(e2e.path), "--json")
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads(result.stdout)
    assert sorted(data["site_changed"]) == ["e2e-edge-1", "e2e-engine-1"]
    assert set(data["site_changed"].values()) == {0}, data["site_changed"]
    assert data["site_handlers"] == []  # no restart on an unchanged re-run
    assert len(data["answer"].split()) >= 3


def test_status_reports_a_healthy_engine(e2e, first_up):
    result = stand_cli("status", str(e2e.path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["engine"]["health"] == "ok" and data["s3"]["running"] and data["wheelhouse"]["running"]
    assert sorted(h["name"] for h in data["hosts"] if h["running"]) == ["e2e-edge-1", "e2e-engine-1"]


# -- common ----------------------------------------------------------------------------------------


def test_firewall_ruleset(up, host):
    ruleset = host.check_output("nft list table inet llm_stands")
    assert "policy drop;" in ruleset
    assert 'iifname "lo" accept' in ruleset
    assert "ct state established,related accept" in ruleset
    assert f"tcp dport 22 ip saddr {SUBNET}.0/24 accept" in ruleset
    assert f"tcp dport 8000 ip saddr {SUBNET}.0/24 accept" in ruleset
    assert host.service("nftables").is_enabled


def test_edge_host_has_the_common_role_but_no_engine(up):
    edge = next(h for h in up.stand.planned_hosts() if "edge" in h.roles)
    edge_host = up.testinfra_host(str(edge.address))
    ruleset = edge_host.check_output("nft list table inet llm_stands")
    assert "policy drop;" in ruleset and f"tcp dport 22 ip saddr {SUBNET}.0/24 accept" in ruleset
    assert "dport 8000" not in ruleset
    assert not edge_host.service(UNIT).is_running


def test_firewall_drops_ports_not_opened(up, host):
    """A listener on a port the stand did not open is unreachable from the bridge, 8000 is."""
    probe = "llm-stands-fw-probe"
    host.check_output(
        f"systemd-run --unit={probe} --collect /usr/bin/python3 -m http.server 9999 --bind {up.address}"
    )
    try:
        deadline = time.monotonic() + 30
        while "9999" not in host.check_output("ss -Htln") and time.monotonic() < deadline:
            time.sleep(0.5)
        # From inside the host it answers (loopback traffic is accepted)...
        assert host.run(f"python3 -c \"import urllib.request; urllib.request.urlopen('http://{up.address}:9999/', timeout=5)\"").rc == 0
        # ...from the control machine it is dropped, while the engine port is open.
        assert not port_open(up.address, 9999, timeout=3.0)
        assert port_open(up.address, 8000, timeout=3.0)
    finally:
        host.run(f"systemctl stop {probe}")


def test_firewall_refuses_to_lock_out_the_control_machine(up, host):
    """Admin CIDRs without the control machine's address: the play stops before any change."""
    ruleset = host.check_output("nft list table inet llm_stands")
    result = up.run_site(extravars={"common_admin_cidrs": ["192.0.2.0/24"]})
    assert not result.ok and result.rc != 0
    assert result.failures, result
    # Every host refused, each naming the control machine's address (the bridge address).
    assert sorted(f.split(":", 1)[0] for f in result.failures) == ["e2e-edge-1", "e2e-engine-1"], result.failures
    for failure in result.failures:
        assert "would cut this SSH session" in failure and f"({SUBNET}.1)" in failure, failure
    assert result.total_changed == 0, result.changed
    assert host.check_output("nft list table inet llm_stands") == ruleset


def test_sshd_hardened(host):
    effective = host.check_output("sshd -T").lower().splitlines()
    assert "passwordauthentication no" in effective
    assert "kbdinteractiveauthentication no" in effective
    assert "permitrootlogin without-password" in effective  # = prohibit-password
    assert host.file("/etc/ssh/sshd_config.d/10-llm-stands-hardening.conf").mode == 0o644


def test_journald_limited(host):
    conf = host.file("/etc/systemd/journald.conf.d/10-llm-stands.conf")
    assert conf.contains("^SystemMaxUse=")
    assert conf.user == "root" and conf.mode == 0o644


# -- model_weights ---------------------------------------------------------------------------------


def _mirror(e2e, s3, rel: str) -> bytes:
    from infra.artifacts.s3 import get_bytes, key_for

    return get_bytes(s3, e2e.bucket, key_for(e2e.model_prefix, rel))


def test_current_points_at_verified_version(up, host):
    manifest = _mirror(up, up.s3(), "MANIFEST.sha256")
    version = hashlib.sha256(manifest).hexdigest()
    assert host.check_output(f"readlink {model_dir(up)}/current").strip() == f"versions/{version}"
    # Every file matches the manifest on the host.
    assert host.run(f"cd {model_dir(up)}/current && sha256sum --quiet -c MANIFEST.sha256").rc == 0


def test_weights_read_only_to_the_engine_user(up, host):
    files = host.check_output(f"find -L {model_dir(up)}/current -type f").split()
    assert any(f.endswith(".safetensors") for f in files)
    for path in files:
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o644), path
    weights = next(f for f in files if f.endswith(".safetensors"))
    assert host.run(f"runuser -u vllm -- test -r {weights}").rc == 0
    assert host.run(f"runuser -u vllm -- test -w {weights}").rc != 0
    assert host.run(f"runuser -u vllm -- touch {model_dir(up)}/current/new-file").rc != 0
    creds = host.file("/opt/model-weights/credentials.json")
    assert (creds.user, creds.mode) == ("root", 0o600)


# -- vllm ------------------------------------------------------------------------------------------


def test_unit_active_and_hardened(host):
    service = host.service(UNIT)
    assert service.is_running and service.is_enabled
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            f"systemctl show {UNIT} -p User -p ProtectSystem -p ProtectHome -p PrivateTmp -p NoNewPrivileges"
            " -p LimitNOFILE -p Restart -p ReadWritePaths -p EnvironmentFiles"
        ).splitlines()
    )
    assert props["User"] == "vllm"
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes"
    assert props["PrivateTmp"] == "yes"
    assert props["NoNewPrivileges"] == "yes"
    assert props["LimitNOFILE"] == "65536"
    assert props["Restart"] == "on-failure"
    assert props["ReadWritePaths"] == "/var/cache/vllm"
    assert props["EnvironmentFiles"].startswith(ENV_FILE)
    user = host.user("vllm")
    assert user.shell == "/usr/sbin/nologin"
    assert host.process.get(pid=main_pid(host)).user == "vllm"


def test_api_key_only_in_root_only_env_file(up, host):
    env = host.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert env.contains(f'VLLM_API_KEY="{up.api_key}"')
    assert up.api_key not in host.file("/etc/systemd/system/vllm.service").content_string
    cmdline = host.check_output(f"tr '\\0' ' ' < /proc/{main_pid(host)}/cmdline")
    assert "vllm.entrypoints.openai.api_server" in cmdline
    assert up.api_key not in cmdline


def exposure(host, unit: str) -> float:
    """The unit's score under `systemd-analyze security` (0 = locked down, 10 = exposed)."""
    out = host.check_output(f"systemd-analyze security {unit} --no-pager")
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out).group(1))


# Units the stand installs or configures, per host role. ssh.service is exempt: it exists to
# give the operator's Ansible a root shell, and any sandbox of sshd is inherited by that shell.
HARDENED_UNITS = {"engine": ("vllm.service", "nftables.service"), "edge": ("nftables.service",)}
MAX_EXPOSURE = 3.0


def test_every_unit_the_stand_installs_is_hardened(up):
    scores = {}
    for h in up.stand.planned_hosts():
        remote = up.testinfra_host(str(h.private_address))
        for role in h.roles:
            for unit in HARDENED_UNITS.get(role, ()):
                scores[f"{h.name}/{unit}"] = exposure(remote, unit)
    print(f"systemd-analyze security: {scores}")
    assert set(scores) == {"e2e-engine-1/vllm.service", "e2e-engine-1/nftables.service",
                           "e2e-edge-1/nftables.service"}
    assert all(score <= MAX_EXPOSURE for score in scores.values()), scores


def test_hosts_listen_only_where_the_ingress_table_says(up):
    """Every socket listening beyond loopback is on a port the ingress table opens to that host;
    the engine's internal ports (its workers' gloo sockets) are on loopback only."""
    from infra.ingress import ingress

    table = ingress(up.stand)
    for h in up.stand.planned_hosts():
        remote = up.testinfra_host(str(h.private_address))
        allowed = {r.port for r in table if r.applies_to(h.roles)}
        exposed = {int(s.rsplit(":", 1)[1]) for s in remote.socket.get_listening_sockets()
                   if s.startswith("tcp://") and not s.startswith(("tcp://127.", "tcp://::1"))}
        assert exposed <= allowed, (h.name, sorted(exposed - allowed))
        if h.has("engine"):
            assert exposed == {22, up.stand.engine.port}, exposed


def test_tool_calling_request_is_answered(up):
    """`tools` with `tool_choice: auto` (the OpenAI client's tool calling): 200, with a tool call or text."""
    tools = [{"type": "function", "function": {
        "name": "get_order_status", "description": "Status of a customer's order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]
    answer = chat(up, "Where is my order 42-17?", tools=tools, tool_choice="auto")
    message = answer["choices"][0]["message"]
    assert message.get("tool_calls") or (message.get("content") or "").strip(), message


def test_every_parser_the_catalog_names_exists_in_the_pinned_engine(host):
    """infra/catalogs/model_families.yaml names vLLM's parsers; the installed engine has each one."""
    from infra import catalog

    probe = ("import json; from vllm.tool_parsers import ToolParserManager as T; "
             "from vllm.reasoning import ReasoningParserManager as R; "
             "print(json.dumps([T.list_registered(), R.list_registered()]))")
    tools, reasoning = json.loads(host.check_output(f"/opt/vllm/venv/bin/python -c '{probe}'"))
    families = catalog.load().families.values()
    assert {f.tool_call_parser for f in families if f.tool_call_parser} <= set(tools)
    assert {f.reasoning_parser for f in families if f.reasoning_parser} <= set(reasoning)


def test_listens_only_on_private_address(up, host):
    listening = [s for s in host.socket.get_listening_sockets() if s.endswith(":8000")]
    assert listening == [f"tcp://{up.address}:8000"]
    assert host.run("python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8000), 3)\"").rc != 0


def test_chat_completion(up):
    answer = chat(up)
    assert answer["model"] == up.model_name
    assert answer["choices"][0]["message"]["content"].strip()
    assert answer["usage"]["completion_tokens"] > 0


def test_chat_needs_the_api_key(up):
    body = {"model": up.model_name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    assert http("POST", f"{up.base_url}/v1/chat/completions", body)[0] == 401
    assert http("POST", f"{up.base_url}/v1/chat/completions", body, key="wrong")[0] == 401


def test_chat_streaming(up):
    body = {"model": up.model_name, "messages": [{"role": "user", "content": "Count to five."}],
            "max_tokens": 16, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    status, raw = http("POST", f"{up.base_url}/v1/chat/completions", body, key=up.api_key)
    assert status == 200
    events = [line[len("data: "):] for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len([c for c in chunks if c["choices"]]) > 1  # really streamed, not one blob
    assert text.strip()
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_metrics(up):
    chat(up, "One more request for the metrics.")
    status, raw = http("GET", f"{up.base_url}/metrics")
    assert status == 200
    text = raw.decode()
    for name in ("vllm:time_to_first_token_seconds", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert f"\n{name}" in text, name
    ttft_count = [line for line in text.splitlines() if line.startswith("vllm:time_to_first_token_seconds_count")]
    assert ttft_count and float(ttft_count[0].rsplit(" ", 1)[1]) >= 1


# -- changes (these disturb the stand: keep them last, before `stand down`) ------------------------


def _model_variant(dest: Path, config: bytes) -> Path:
    """The SmolLM2 folder the driver mirrored, with another config.json and no manifest (push_model
    hashes it). Unchanged files are hard links to the cache: nothing there is written."""
    from infra.artifacts.model import MANIFEST, prepare_smollm2

    source = prepare_smollm2()  # the converted model in the cache, as `stand up` pushed it
    dest.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if not path.is_file() or rel.as_posix() in (MANIFEST, "config.json") or rel.parts[0].startswith("."):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest / rel)
        except OSError:
            shutil.copy2(path, dest / rel)
    (dest / "config.json").write_bytes(config)
    return dest


def test_new_weights_version_switches_current_and_restarts_engine(up, host, tmp_path):
    """A new valid version (config.json changed) pushed to the mirror: site.yml verifies it,
    switches `current` and restarts the engine."""
    from infra.artifacts.model import push_model

    s3 = up.s3()
    config = _mirror(up, s3, "config.json")
    pid_before = main_pid(host)
    current_before = host.check_output(f"readlink {model_dir(up)}/current").strip()
    push_model(s3, up.bucket, up.model_prefix, _model_variant(tmp_path / "v2", config.rstrip() + b"\n\n"))
    new_manifest = _mirror(up, s3, "MANIFEST.sha256")
    assert hashlib.sha256(new_manifest).hexdigest() != current_before.removeprefix("versions/")

    result = up.run_site()
    assert result.ok, result.failures
    assert any(h.endswith("Restart vllm") for h in result.handlers), result.handlers
    assert result.changed["e2e-edge-1"] == 0, result.changed  # nothing of the edge host depends on weights
    current = host.check_output(f"readlink {model_dir(up)}/current").strip()
    assert current == f"versions/{hashlib.sha256(new_manifest).hexdigest()}" != current_before
    # The unchanged files were not downloaded again: hard links to the previous version.
    weights = host.check_output(f"find {model_dir(up)}/{current} -name '*.safetensors'").split()
    assert weights and all(int(host.check_output(f"stat -c %h {w}")) == 2 for w in weights)
    assert host.file(f"{model_dir(up)}/{current_before}/MANIFEST.sha256").exists  # previous version kept
    assert main_pid(host) != pid_before
    assert chat(up)["choices"][0]["message"]["content"].strip()


def test_corrupted_weights_fail_named_and_engine_keeps_serving(up, host, tmp_path):
    """A new version on the mirror whose config.json does not match its manifest."""
    from infra.artifacts.model import push_model
    from infra.artifacts.s3 import key_for, put_bytes

    s3 = up.s3()
    original_manifest, original_config = _mirror(up, s3, "MANIFEST.sha256"), _mirror(up, s3, "config.json")
    pid_before = main_pid(host)
    current_before = host.check_output(f"readlink {model_dir(up)}/current").strip()

    intended = original_config.rstrip() + b"\n\n\n"  # the "new version" the manifest describes
    corrupted = intended.replace(b"{", b"[", 1)  # what actually landed on the mirror
    try:
        push_model(s3, up.bucket, up.model_prefix, _model_variant(tmp_path / "v3", intended))
        put_bytes(s3, up.bucket, key_for(up.model_prefix, "config.json"), corrupted)
        result = up.run_site()
    finally:  # the mirror as it was (the version the host has)
        put_bytes(s3, up.bucket, key_for(up.model_prefix, "config.json"), original_config)
        put_bytes(s3, up.bucket, key_for(up.model_prefix, "MANIFEST.sha256"), original_manifest)

    assert not result.ok and result.rc != 0
    assert len(result.failures) == 1, result.failures
    failure = result.failures[0]
    assert failure.startswith("e2e-engine-1: ") and "failed verification" in failure, failure
    assert "config.json" in failure, failure
    assert host.check_output(f"readlink {model_dir(up)}/current").strip() == current_before
    assert main_pid(host) == pid_before
    assert chat(up)["choices"][0]["message"]["content"].strip()


def test_sigkill_restarts_engine(up, host):
    pid = main_pid(host)
    restarts = int(host.check_output(f"systemctl show -p NRestarts --value {UNIT}").strip())
    host.check_output(f"kill -KILL {pid}")
    deadline = time.monotonic() + RESTART_DEADLINE
    new_pid = pid
    while time.monotonic() < deadline:
        new_pid = main_pid(host)
        if new_pid not in (0, pid) and healthy(up):
            break
        time.sleep(3)
    assert new_pid not in (0, pid), host.check_output(f"journalctl -u {UNIT} -n 40 --no-pager")
    assert healthy(up), host.check_output(f"journalctl -u {UNIT} -n 40 --no-pager")
    assert int(host.check_output(f"systemctl show -p NRestarts --value {UNIT}").strip()) == restarts + 1
    assert chat(up)["choices"][0]["message"]["content"].strip()


# -- stand down (last) -----------------------------------------------------------------------------


def test_down_leaves_nothing_behind(e2e, first_up):
    from infra.local.network import veth_name

    state = e2e.layout.state
    bridge = e2e.layout.bridge
    result = e2e.down()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["removed"] is True

    assert bridge not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert bridge not in links
    for h in e2e.stand.planned_hosts():
        assert veth_name(bridge, h.name) not in links, h.name
    mounts = Path("/proc/mounts").read_text()
    assert str(state) not in mounts and f"{REPO}/.stand/{e2e.stand.stack}/" not in mounts
    assert not state.exists()
    # seaweedfs, the wheelhouse and apt-cacher-ng were bound to the bridge address; the hosts ran
    # from the state dir; Ansible's SSH masters and testinfra talked to the hosts.
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert f"{SUBNET}." not in ps and str(state) not in ps, ps
    # Sockets a process still holds (TIME-WAIT entries of closed connections belong to none).
    sockets = subprocess.run(["ss", "-Htanup"], capture_output=True, text=True).stdout.splitlines()
    assert not [s for s in sockets if f"{SUBNET}." in s and "users:(" in s], sockets
