"""Test support for local hosts: run commands over SSH, and the `test_hosts_factory` fixture.

The fixture lives here (not only in a conftest) so any test directory can use it: add

    from infra.local.testing import test_hosts_factory  # noqa: F401  (pytest fixture)

to that directory's conftest.py. tests/local/conftest.py already does. Usage in a test:

    def test_engine(test_hosts_factory):
        a, b = test_hosts_factory(["test-a", "test-b"])   # up (idempotent), in parallel
        assert a.check("systemctl is-system-running") in ("running\\n", "degraded\\n")
        key = test_hosts_factory.key_path                 # for ansible / testinfra

All tests share one test network (bridge llmstt, 10.213.9.0/24; override with the environment
variables LLM_STANDS_TEST_BRIDGE and LLM_STANDS_TEST_CIDR) and one fixed state dir, so a
crashed earlier session is cleaned at the start of the next; a lock serialises concurrent
sessions. Hosts are created on first request and kept until the session ends (or until a
test calls `test_hosts_factory.down()`; the next request brings them back). Addresses are
assigned per name and remembered in the state dir, so a name keeps its address.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from .hosts import HostSpec, LocalHosts, LocalNetwork

# Overridable, e.g. when someone's dev stand already uses the subnet on this machine.
TEST_NETWORK = LocalNetwork(
    os.environ.get("LLM_STANDS_TEST_BRIDGE", "llmstt"),
    os.environ.get("LLM_STANDS_TEST_CIDR", "10.213.9.0/24"),
)
TEST_STATE_DIR = Path(tempfile.gettempdir()) / f"llm-stands-test-hosts-{TEST_NETWORK.bridge}"
FIRST_HOST_OCTET = 11
LOCK_WAIT = 1800.0


def missing_prerequisites() -> str | None:
    """Why real hosts cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root: local hosts need root"
    for binary, package in (("systemd-nspawn", "systemd-container"), ("mmdebstrap", "mmdebstrap"),
                            ("apt-cacher-ng", "apt-cacher-ng")):
        if not shutil.which(binary):
            return f"{binary} missing: run scripts/setup (it installs {package})"
    return None


@dataclass(frozen=True)
class SshResult:
    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class LocalHost:
    name: str
    address: str
    key_path: Path

    def run(self, command: str, timeout: float = 120.0) -> SshResult:
        """Run a shell command as root over SSH (a fresh connection each time)."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # host keys are new each boot
        try:
            client.connect(self.address, username="root", key_filename=str(self.key_path),
                           look_for_keys=False, allow_agent=False,
                           timeout=10, banner_timeout=10, auth_timeout=10)
            _, stdout, stderr = client.exec_command(command, timeout=timeout)
            channel = stdout.channel
            if not channel.status_event.wait(timeout):
                raise TimeoutError(f"{self.name}: {command!r} still running after {timeout:.0f}s")
            return SshResult(channel.recv_exit_status(), stdout.read().decode(), stderr.read().decode())
        finally:
            client.close()

    def check(self, command: str, timeout: float = 120.0) -> str:
        """Like run(), but fail the test on a non-zero exit; returns stdout."""
        res = self.run(command, timeout)
        assert res.rc == 0, f"{self.name}: {command!r} exited {res.rc}\n{res.stdout}\n{res.stderr}"
        return res.stdout


class HostsFactory:
    """Callable: names -> running LocalHost objects on the test network (see module doc)."""

    def __init__(self, network: LocalNetwork = TEST_NETWORK, state_dir: Path = TEST_STATE_DIR,
                 cache_dir: Path | None = None):
        self.state_dir = Path(state_dir)
        self.local = LocalHosts(network, self.state_dir, cache_dir, progress=_progress)
        self.key_path, self.public_key = self.local.ssh_keypair()
        self._addresses_file = self.state_dir / "test-addresses.json"

    def __call__(self, names: list[str]) -> list[LocalHost]:
        specs = [HostSpec(name, self.address_of(name)) for name in names]
        self.local.up(specs, self.public_key)
        return [LocalHost(s.name, s.address, self.key_path) for s in specs]

    def address_of(self, name: str) -> str:
        known = json.loads(self._addresses_file.read_text()) if self._addresses_file.exists() else {}
        if name not in known:
            net = self.local.network
            prefix = net.gateway.rsplit(".", 1)[0]
            used = set(known.values())
            free = (f"{prefix}.{i}" for i in range(FIRST_HOST_OCTET, 255) if f"{prefix}.{i}" not in used)
            known[name] = next(free)
            self._addresses_file.write_text(json.dumps(known, indent=2) + "\n")
        return known[name]

    def down(self) -> None:
        self.local.down()


def _progress(msg: str) -> None:
    print(f"[local-hosts] {msg}", file=sys.stderr, flush=True)


def _lock_session(state_dir: Path):
    """Hold an exclusive lock on the test network for the whole session."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fh = open(state_dir / ".session.lock", "w")
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if time.monotonic() > deadline:
                fh.close()
                pytest.fail(f"another test session holds {state_dir}/.session.lock for {LOCK_WAIT:.0f}s")
            time.sleep(1)


@pytest.fixture(scope="session")
def test_hosts_factory():
    """Session-wide HostsFactory on bridge llmstt (10.213.9.0/24); everything is removed at the end.

    Skips (with the reason) when not root or systemd-nspawn/mmdebstrap/apt-cacher-ng are missing.
    """
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    lock = _lock_session(TEST_STATE_DIR)
    factory = HostsFactory()
    try:
        factory.down()  # leftovers of a crashed earlier session
        yield factory
    finally:
        factory.down()
        lock.close()
