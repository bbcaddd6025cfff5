"""Real systemd-nspawn hosts on the test network (bridge llmstt, 10.213.9.0/24).

Traffic goes only to the hosts created here and to the bridge address (apt-cacher-ng).
The last two tests tear the network down (normally and after a simulated crash); the
factory brings hosts back for any test that asks for them afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from infra.local import network as net
from infra.local.hosts import NSPAWN_RUN, HostSpec, LocalHosts, LocalNetwork, _cgroup_roots
from infra.local.pidfile import _proc_stat
from infra.local.system import mounts
from infra.local.testing import LocalHost

pytestmark = pytest.mark.hosts

NAMES = ["test-a", "test-b"]
OTHER_NETWORK = LocalNetwork("llmstu", os.environ.get("LLM_STANDS_TEST_OTHER_CIDR", "10.213.10.0/24"))


@pytest.fixture
def two_hosts(test_hosts_factory) -> list[LocalHost]:
    return test_hosts_factory(NAMES)


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def nspawn_locks(local: LocalHosts) -> list[Path]:
    """nspawn's image lock files of the running hosts (recorded at boot)."""
    records = (local.state_dir / "hosts").glob("*/nspawn-lock")
    return [NSPAWN_RUN / "locks" / r.read_text().strip() for r in records]


def assert_network_gone(local: LocalHosts, names: list[str], pids: list[int], locks: list[Path]) -> None:
    bridge = local.network.bridge
    assert not [p for p in locks if p.exists()], "nspawn lock files left"
    for name in names:
        assert not (NSPAWN_RUN / "propagate" / f"{bridge}.{name}").exists(), "nspawn propagate dir left"
    assert not [n for n in net.netns_list() if n.startswith(f"{bridge}.")], net.netns_list()
    state = str(local.state_dir)
    assert not [m for m in mounts() if m[1].startswith(state) or state in m[3]], "mounts left"
    assert not net.link_exists(bridge), f"bridge {bridge} left"
    for name in names:
        assert not net.link_exists(net.veth_name(bridge, name)), f"veth of {name} left"
    for root in _cgroup_roots():
        group = root / "llm-stands"
        left = [p.name for p in group.iterdir() if p.name.startswith(f"{bridge}.")] if group.is_dir() else []
        assert not left, f"cgroup dirs left in {root}: {left}"
    assert not [pid for pid in pids if _alive(pid)], "nspawn processes left"
    assert not local.aptcache.running
    assert not (local.state_dir / "hosts").exists()


def test_systemd_is_pid1_and_system_running(two_hosts):
    for host in two_hosts:
        assert host.check("cat /proc/1/comm").strip() == "systemd"
        state = host.run("systemctl is-system-running --wait", timeout=90).stdout.strip()
        assert state in ("running", "degraded"), host.run("systemctl --failed --no-pager").stdout
        assert host.check("hostname").strip() == host.name
        assert "eth0" in host.check("ip -o -4 addr show") and host.address in host.check("hostname -I")


def test_ssh_accepts_the_generated_key_only(two_hosts, test_hosts_factory, tmp_path):
    host = two_hosts[0]
    if shutil.which("ssh"):
        res = subprocess.run(
            ["ssh", "-i", str(test_hosts_factory.key_path), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=10", f"root@{host.address}", "id -u"],
            capture_output=True, text=True, timeout=30,
        )
        assert res.returncode == 0 and res.stdout.strip() == "0", res.stderr
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True, timeout=30)
    with pytest.raises(paramiko.AuthenticationException):
        LocalHost(host.name, host.address, other_key).run("true")


def test_host_reaches_other_host_over_bridge(two_hosts):
    a, b = two_hosts
    a.check(f"ping -c 1 -W 2 {b.address}")
    banner = a.check(
        f"python3 -c 'import socket; print(socket.create_connection((\"{b.address}\", 22), 5).recv(4))'"
    )
    assert "SSH-" in banner
    assert b.address in a.check(f"ip neigh show {b.address}")


def test_hosts_have_no_route_out(two_hosts):
    a = two_hosts[0]
    assert "default" not in a.check("ip route")
    # 192.0.2.1 is TEST-NET-1: only a routing lookup, nothing is sent.
    assert a.run("ip route get 192.0.2.1").rc != 0
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"


def test_apt_works_through_the_proxy(two_hosts, test_hosts_factory):
    a = two_hosts[0]
    gateway = test_hosts_factory.local.network.gateway
    assert f"{gateway}:3142" in a.check("cat /etc/apt/apt.conf.d/01llm-stands-proxy")
    a.check("apt-get update -q -o Acquire::Retries=2", timeout=240)
    a.check("DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello", timeout=240)
    assert "Hello, world!" in a.check("hello")


def test_up_again_is_a_noop(two_hosts, test_hosts_factory):
    local = test_hosts_factory.local
    before = {row["name"]: row["pid"] for row in local.status()}
    started = time.monotonic()
    test_hosts_factory(NAMES)
    assert time.monotonic() - started < 5
    assert {row["name"]: row["pid"] for row in local.status()} == before
    assert all(row["running"] and row["ssh"] for row in local.status())


def test_second_network_coexists(two_hosts, test_hosts_factory, tmp_path):
    other = LocalHosts(OTHER_NETWORK, tmp_path / "state", progress=print)
    key, pub = other.ssh_keypair()
    same_name = HostSpec(two_hosts[0].name, "10.213.10.11")  # same host name, other bridge
    try:
        other.up([same_name], pub)
        host = LocalHost(same_name.name, same_name.address, key)
        assert host.check("hostname").strip() == same_name.name
        # Bridges are separate segments and nothing forwards between them.
        assert host.run(f"ping -c 1 -W 1 {two_hosts[1].address}").rc != 0
        pids = [row["pid"] for row in other.status()]
        locks = nspawn_locks(other)
    finally:
        other.down()
    assert_network_gone(other, [same_name.name], pids, locks)
    two_hosts[0].check("true")  # the test network is untouched


def test_down_removes_everything_and_is_repeatable(two_hosts, test_hosts_factory):
    local = test_hosts_factory.local
    pids = [row["pid"] for row in local.status()]
    assert len(pids) == len(NAMES) and all(pids)
    locks = nspawn_locks(local)
    assert len(locks) == len(NAMES) and all(p.exists() for p in locks)
    started = time.monotonic()
    local.down()
    print(f"down took {time.monotonic() - started:.1f}s")
    assert_network_gone(local, NAMES, pids, locks)
    local.down()
    assert_network_gone(local, NAMES, pids, locks)


def test_down_cleans_up_after_a_crash(test_hosts_factory):
    test_hosts_factory(NAMES)
    local = test_hosts_factory.local
    pids = [row["pid"] for row in local.status()]
    locks = nspawn_locks(local)
    for name in NAMES:
        pid = int((local.state_dir / "hosts" / name / "nspawn.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)  # nspawn dies; mounts, netns, veth and cgroups stay
    deadline = time.monotonic() + 10
    while any(row["running"] for row in local.status()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(row["running"] for row in local.status())
    assert any(str(local.state_dir) in m[1] for m in mounts()), "the crash should leave the overlay mounted"
    local.down()
    assert_network_gone(local, NAMES, pids, locks)
