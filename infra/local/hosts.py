"""Real Linux hosts on this machine: systemd-nspawn containers, one network namespace each.

    hosts = LocalHosts(LocalNetwork("llmst0", "10.213.0.0/24"), Path("/var/lib/llm-stands/local"))
    key_path, pubkey = hosts.ssh_keypair()
    hosts.up([HostSpec("local-engine-1", "10.213.0.11")], pubkey)   # idempotent
    hosts.status()
    hosts.down()                                                      # removes everything

Each host: systemd as PID 1, sshd on its address, an overlay of the shared base rootfs (see
rootfs.py) with a per-host upper dir, a veth on the network's bridge, apt through
apt-cacher-ng on the bridge address, and no other route out (ip_forward stays 0).

State dir layout (one network per state dir):
    network.json                        the network it belongs to
    ssh/id_ed25519{,.pub}               the keypair from ssh_keypair() (kept by down())
    aptcache/                           apt-cacher-ng config, logs and PID file
    hosts/NAME/{spec.json,upper,work,root,nspawn.pid,nspawn.log}

CLI: python -m infra.local.hosts up|down|status --bridge B --cidr C --state-dir D --host NAME=ADDR ...
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shlex
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.errors import StandError

from . import network as net
from .aptcache import PORT as APT_PORT
from .aptcache import AptCache
from .pidfile import Daemon
from .rootfs import default_cache_dir, ensure_rootfs
from .system import mounts, require_root, run, safe_rmtree, unmount_under, which_or_fail

CGROUP_GROUP = "llm-stands"  # our subtree in each cgroup hierarchy
# nspawn's runtime files; /run is not a tmpfs on these machines, so they outlive the host.
NSPAWN_RUN = Path("/run/systemd/nspawn")
BOOT_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class HostSpec:
    name: str  # hostname, e.g. "local-engine-1"
    address: str  # IPv4 on the network, e.g. "10.213.0.11"


@dataclass(frozen=True)
class LocalNetwork:
    bridge: str  # e.g. "llmst0"
    cidr: str  # e.g. "10.213.0.0/24"; the bridge gets the first address (.1)

    @property
    def gateway(self) -> str:
        return str(net.gateway_interface(self.cidr).ip)

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.cidr).prefixlen


class LocalHostsError(StandError):
    pass


def ssh_ready(address: str, timeout: float = 1.0) -> bool:
    """True once sshd answers with its banner (a bare TCP accept is not enough)."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _cgroup_roots() -> list[Path]:
    """Hierarchies a host needs its own dir in: the systemd-named v1 one and the v2 one."""
    roots = []
    for _, mountpoint, fstype, options in mounts():
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
            roots.append(Path(mountpoint))
    return roots


class LocalHosts:
    def __init__(
        self,
        network: LocalNetwork,
        state_dir: Path,
        cache_dir: Path | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        net.validate_bridge(network.bridge)
        net.gateway_interface(network.cidr)  # validates the cidr
        self.network = network
        self.state_dir = Path(state_dir).absolute()
        self.cache_dir = Path(cache_dir or default_cache_dir()).absolute()
        self.progress = progress or (lambda msg: None)
        self.aptcache = AptCache(
            network.gateway,
            self.state_dir / "aptcache",
            self.cache_dir / "apt-cacher-ng" / network.bridge,  # one instance per bridge
        )

    # -- paths and names -----------------------------------------------------------------------

    def _host_dir(self, name: str) -> Path:
        return self.state_dir / "hosts" / name

    def _daemon(self, name: str) -> Daemon:
        # The argv only matters for start(); stop()/running use the PID file alone.
        return Daemon("nspawn", [], self._host_dir(name))

    def _machine(self, name: str) -> str:
        """nspawn machine name: unique per network (the same host name may exist on two)."""
        return net.netns_name(self.network.bridge, name)

    def _cgroup_dirs(self, name: str) -> list[Path]:
        return [root / CGROUP_GROUP / self._machine(name) for root in _cgroup_roots()]

    # -- public API ----------------------------------------------------------------------------

    def ssh_keypair(self) -> tuple[Path, str]:
        """(private key path, public key line) kept in STATE_DIR/ssh; generated if missing."""
        key = self.state_dir / "ssh" / "id_ed25519"
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"llm-stands@{self.network.bridge}",
                 "-f", key], timeout=30)
        return key, key.with_suffix(".pub").read_text().strip()

    def up(self, hosts: list[HostSpec], ssh_public_key: str, apt_proxy: bool = True) -> None:
        """Create missing hosts and boot them in parallel; running ones are left alone.

        Returns once sshd answers on every host. On failure, whatever was created stays for
        down() to remove.
        """
        self._check_prerequisites()
        self._validate(hosts)
        self._claim_state_dir()
        missing = [h for h in hosts if not self._is_running(h)]
        started = time.monotonic()
        rootfs = ensure_rootfs(self.cache_dir, self.progress) if missing else None
        net.bridge_up(self.network.bridge, self.network.cidr)  # idempotent, also repairs
        if apt_proxy and (missing or not self.aptcache.running):
            self.aptcache.start(self.progress)
            self.aptcache.warm(self.progress)
        if not missing:
            self.progress(f"{self.network.bridge}: all {len(hosts)} hosts already running")
            return
        self.progress(f"{self.network.bridge}: booting {', '.join(h.name for h in missing)}")
        errors = self._parallel(lambda h: self._create_host(h, rootfs, ssh_public_key, apt_proxy), missing)
        if errors:
            raise LocalHostsError("hosts failed to start:\n" + "\n".join(errors))
        self.progress(f"{self.network.bridge}: {len(missing)} hosts up in {time.monotonic() - started:.1f}s")

    def down(self) -> None:
        """Remove everything this network's hosts created. Safe to repeat and after a crash.

        Hosts are found from the state dir and from deterministic names (network namespaces
        "BRIDGE.HOST", cgroup dirs, veths on the bridge). The SSH keypair is kept.
        """
        require_root()
        recorded = self._recorded_network()
        if recorded and recorded != self.network:
            raise LocalHostsError(f"{self.state_dir} belongs to {recorded}, not {self.network}")
        names = self._known_host_names()
        if names:
            self.progress(f"{self.network.bridge}: stopping {', '.join(sorted(names))}")
        errors = self._parallel(self._destroy_host, sorted(names))
        for link in net.links_on_bridge(self.network.bridge):
            run(["ip", "link", "del", link], timeout=30, check=False)
        self.aptcache.stop()
        net.bridge_down(self.network.bridge)
        if not errors:
            for leftover in ("hosts", "aptcache"):
                safe_rmtree(self.state_dir / leftover)
            (self.state_dir / "network.json").unlink(missing_ok=True)
        if errors:
            raise LocalHostsError("down left something behind:\n" + "\n".join(errors))
        self.progress(f"{self.network.bridge}: down")

    def status(self) -> list[dict]:
        """One dict per host known to the state dir: name, address, pid, running, ssh."""
        rows = []
        for name in sorted(self._state_host_names()):
            spec = self._read_spec(name)
            address = spec.address if spec else None
            pid = self._daemon(name).pid
            rows.append({
                "name": name,
                "address": address,
                "pid": pid,
                "running": pid is not None,
                "ssh": bool(address and pid and ssh_ready(address)),
                "netns": net.netns_name(self.network.bridge, name),
            })
        return rows

    # -- up helpers ----------------------------------------------------------------------------

    def _check_prerequisites(self) -> None:
        require_root()
        which_or_fail("systemd-nspawn", "run scripts/setup (it installs systemd-container)")
        which_or_fail("ip", "apt-get install iproute2")
        which_or_fail("ssh-keygen", "apt-get install openssh-client")

    def _validate(self, hosts: list[HostSpec]) -> None:
        subnet = ipaddress.IPv4Network(self.network.cidr)
        names, addresses = set(), set()
        for h in hosts:
            net.validate_host(h.name)
            addr = ipaddress.IPv4Address(h.address)
            if addr not in subnet or str(addr) == self.network.gateway or addr in (
                subnet.network_address, subnet.broadcast_address
            ):
                raise ValueError(f"{h.name}: {h.address} is not a host address of {self.network.cidr} "
                                 f"(the gateway {self.network.gateway} is the bridge's)")
            if h.name in names or h.address in addresses:
                raise ValueError(f"duplicate host name or address: {h}")
            names.add(h.name)
            addresses.add(h.address)
            known = self._read_spec(h.name)
            if known and known != h and self._daemon(h.name).running:
                raise LocalHostsError(f"{h.name} is running as {known.address}, not {h.address}: run down first")

    def _claim_state_dir(self) -> None:
        """One network per state dir: refuse to mix, so down() always knows what to remove."""
        recorded = self._recorded_network()
        if recorded:
            if recorded != self.network:
                raise LocalHostsError(f"{self.state_dir} belongs to {recorded}: run down there first")
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "network.json").write_text(json.dumps(asdict(self.network)) + "\n")

    def _recorded_network(self) -> LocalNetwork | None:
        path = self.state_dir / "network.json"
        return LocalNetwork(**json.loads(path.read_text())) if path.exists() else None

    def _is_running(self, host: HostSpec) -> bool:
        return self._read_spec(host.name) == host and self._daemon(host.name).running

    def _create_host(self, host: HostSpec, rootfs: Path, pubkey: str, apt_proxy: bool) -> None:
        self._destroy_host(host.name)  # leftovers of a crashed run
        hdir = self._host_dir(host.name)
        merged = hdir / "root"
        for sub in ("upper", "work", "root"):
            (hdir / sub).mkdir(parents=True, exist_ok=True)
        (hdir / "spec.json").write_text(json.dumps(asdict(host)) + "\n")
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={rootfs},upperdir={hdir / 'upper'},workdir={hdir / 'work'}", merged])
        self._write_host_files(host, merged, pubkey, apt_proxy)
        ns = net.host_net_up(self.network.bridge, host.name, host.address, self.network.prefixlen)
        self._boot(host, merged, ns)

    def _write_host_files(self, host: HostSpec, root: Path, pubkey: str, apt_proxy: bool) -> None:
        etc = root / "etc"
        (etc / "hostname").write_text(f"{host.name}\n")
        (etc / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n{host.address}\t{host.name}\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        )
        # No DNS server exists here: fail lookups at once instead of stalling fact gathering.
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
        proxy = etc / "apt" / "apt.conf.d" / "01llm-stands-proxy"
        if apt_proxy:
            proxy.write_text(f'Acquire::http::Proxy "http://{self.network.gateway}:{APT_PORT}";\n')
        ssh_dir = root / "root" / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(pubkey.strip() + "\n")
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        run(["ssh-keygen", "-q", "-A", "-f", root], timeout=60)  # this host's own host keys

    def _boot(self, host: HostSpec, merged: Path, ns: str) -> None:
        cgroups = self._cgroup_dirs(host.name)
        for cg in cgroups:
            cg.mkdir(parents=True, exist_ok=True)
        # Move the launcher into the host's own cgroup dirs before exec'ing nspawn: with
        # --keep-unit, instances sharing a cgroup collide. A shell does it (preexec_fn is not
        # safe with the threads we boot in); exec keeps the PID the Daemon records.
        enter = " && ".join(f"echo $$ > {shlex.quote(str(cg / 'cgroup.procs'))}" for cg in cgroups)
        argv = [
            "sh", "-c", f'{enter or "true"} && exec "$@"', "nspawn-launch",
            "systemd-nspawn", "-q", "-D", str(merged), "-b",
            f"--machine={self._machine(host.name)}", f"--hostname={host.name}",
            "--settings=false",  # ignore any NAME.nspawn files lying around
            # PID 1 of this machine is not systemd: without these, "Failed to open system bus".
            "--register=no", "--keep-unit",
            "--resolv-conf=off", "--timezone=off", "--link-journal=no",
            f"--network-namespace-path={net.NETNS_DIR / ns}",
            # nspawn grants CAP_NET_ADMIN only with --private-network; the host has its own
            # namespace, so this lets it load its own firewall (nft), as a VM would.
            "--capability=CAP_NET_ADMIN",
        ]
        # nspawn locks the image as locks/inode-DEV:INO and leaves the file behind: note its name.
        st = merged.stat()
        (self._host_dir(host.name) / "nspawn-lock").write_text(f"inode-{st.st_dev}:{st.st_ino}\n")
        Daemon("nspawn", argv, self._host_dir(host.name)).start(
            ready=lambda: ssh_ready(host.address), timeout=BOOT_TIMEOUT
        )

    # -- down helpers --------------------------------------------------------------------------

    def _state_host_names(self) -> set[str]:
        hosts_dir = self.state_dir / "hosts"
        return {p.name for p in hosts_dir.iterdir() if p.is_dir()} if hosts_dir.is_dir() else set()

    def _known_host_names(self) -> set[str]:
        names = self._state_host_names() | set(net.netns_of_bridge(self.network.bridge))
        prefix = f"{self.network.bridge}."
        for root in _cgroup_roots():
            group = root / CGROUP_GROUP
            if group.is_dir():
                names |= {p.name[len(prefix):] for p in group.iterdir() if p.is_dir() and p.name.startswith(prefix)}
        return names

    def _read_spec(self, name: str) -> HostSpec | None:
        try:
            return HostSpec(**json.loads((self._host_dir(name) / "spec.json").read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _destroy_host(self, name: str) -> None:
        """Stop and remove one host; each step tolerates the others being already done."""
        self._daemon(name).stop(timeout=STOP_TIMEOUT)
        self._kill_cgroup_members(name)
        unmount_under(self._host_dir(name))
        net.host_net_down(self.network.bridge, name)
        self._remove_cgroup_dirs(name)
        self._remove_nspawn_leftovers(name)
        safe_rmtree(self._host_dir(name))

    def _remove_nspawn_leftovers(self, name: str) -> None:
        lock_record = self._host_dir(name) / "nspawn-lock"
        if lock_record.exists():
            (NSPAWN_RUN / "locks" / lock_record.read_text().strip()).unlink(missing_ok=True)
        safe_rmtree(NSPAWN_RUN / "propagate" / self._machine(name))

    def _cgroup_pids(self, name: str) -> set[int]:
        pids: set[int] = set()
        for cg in self._cgroup_dirs(name):
            for procs in cg.rglob("cgroup.procs") if cg.is_dir() else ():
                try:
                    pids |= {int(p) for p in procs.read_text().split()}
                except OSError:
                    pass  # the cgroup vanished meanwhile
        return pids

    def _kill_cgroup_members(self, name: str, timeout: float = 15.0) -> None:
        """SIGKILL what is left in the host's cgroups (after a crash the container's processes
        can outlive nspawn). These dirs hold only processes we started, so this is by ownership,
        not by name."""
        deadline = time.monotonic() + timeout
        while pids := self._cgroup_pids(name):
            if time.monotonic() > deadline:
                raise LocalHostsError(f"{name}: processes {sorted(pids)} survive SIGKILL")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)

    def _remove_cgroup_dirs(self, name: str) -> None:
        for cg in self._cgroup_dirs(name):
            if not cg.is_dir():
                continue
            # cgroupfs dirs are removed with rmdir, children first (their files go with them).
            for sub in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                sub.rmdir()
            cg.rmdir()
            try:
                cg.parent.rmdir()  # our group dir, once no network uses it
            except OSError:
                pass

    def _parallel(self, fn: Callable, items: list) -> list[str]:
        """Run fn over items in threads; return "item: error" strings for the failures."""
        if not items:
            return []
        errors = []
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for future, item in futures.items():
                try:
                    future.result()
                except Exception as exc:  # noqa: BLE001 - reported together below
                    label = getattr(item, "name", item)
                    errors.append(f"{label}: {exc}")
        return errors


# -- CLI ----------------------------------------------------------------------------------------


def _parse_host(text: str) -> HostSpec:
    name, sep, address = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--host wants NAME=ADDRESS, got {text!r}")
    return HostSpec(name, address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.hosts", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--bridge", default="llmst0")
    parser.add_argument("--cidr", default="10.213.0.0/24")
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/llm-stands/local"))
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--host", type=_parse_host, action="append", default=[], help="NAME=ADDRESS (repeat)")
    parser.add_argument("--no-apt-proxy", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    hosts = LocalHosts(LocalNetwork(args.bridge, args.cidr), args.state_dir, args.cache_dir, progress)
    try:
        if args.command == "up":
            if not args.host:
                parser.error("up needs at least one --host NAME=ADDRESS")
            key, pub = hosts.ssh_keypair()
            hosts.up(args.host, pub, apt_proxy=not args.no_apt_proxy)
            print(f"ssh -i {key} -o StrictHostKeyChecking=no root@{args.host[0].address}", file=sys.stderr)
        elif args.command == "down":
            hosts.down()
        print(json.dumps(hosts.status(), indent=2))
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
