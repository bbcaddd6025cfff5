"""The base Debian rootfs shared read-only by all local hosts (the overlay lower dir).

Built once with mmdebstrap and cached as CACHE_DIR/rootfs/SUITE-KEY/{root,spec.json}, where KEY hashes everything
that shapes it (suite, sources, package list, preparation version). The build goes to a
temporary dir that is renamed into place only when complete, under a lock, so a killed or
concurrent build never leaves a half rootfs that looks valid. Downloaded .debs are kept in
CACHE_DIR/debs via mmdebstrap's sync-in/sync-out hooks, so a rebuild does not download again.

The base holds nothing host-specific: SSH host keys, machine-id, hostname, resolv.conf and
root's authorized_keys are written per host into its overlay upper dir.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from .aptcache import debian_sources
from .pidfile import Daemon
from .system import CommandError, run, safe_rmtree, which_or_fail

# What a host needs to be driven by Ansible over SSH like a fresh VM: systemd as init, sshd,
# python3 (+ apt bindings for the apt module), sudo, and the basics roles and tests touch.
BASE_PACKAGES: tuple[str, ...] = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo",
    "python3", "python3-apt", "iproute2", "iputils-ping", "netbase",
    "ca-certificates", "curl", "gnupg", "procps", "less",
)
# Bump when prepare() changes, so old cached rootfs are not reused.
PREPARE_VERSION = 1
SPEC_FILE = "spec.json"  # written last, beside root/: its presence marks a complete build

Progress = Callable[[str], None]


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-stands"


def _machine_apt_options() -> list[str]:
    """Apt options of this machine that the hosts need too (its mirror may be a snapshot)."""
    dump = run(["apt-config", "dump"], timeout=30).stdout
    wanted = []
    for line in dump.splitlines():
        if line.startswith(("Acquire::Check-Valid-Until ", "Acquire::Check-Date ")):
            wanted.append(line.rstrip(";"))
    return sorted(wanted)


def rootfs_spec(suite: str, packages: tuple[str, ...]) -> dict:
    return {
        "suite": suite,
        "variant": "apt",
        "packages": sorted(set(packages)),
        "sources": [s.line() for s in debian_sources(suite)],
        "aptopts": _machine_apt_options(),
        "prepare": PREPARE_VERSION,
    }


def rootfs_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def ensure_rootfs(
    cache_dir: Path | None = None,
    progress: Progress = lambda msg: None,
    suite: str = "bookworm",
    packages: tuple[str, ...] = BASE_PACKAGES,
    timeout: float = 1200.0,
) -> Path:
    """Return the root dir of a complete base rootfs, building it first if not cached."""
    cache_dir = Path(cache_dir or default_cache_dir())
    spec = rootfs_spec(suite, packages)
    key = rootfs_key(spec)
    root_dir = cache_dir / "rootfs"
    final = root_dir / f"{suite}-{key}"
    if (final / SPEC_FILE).is_file():
        return final / "root"
    root_dir.mkdir(parents=True, exist_ok=True)
    with open(root_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same rootfs
        if (final / SPEC_FILE).is_file():
            return final / "root"
        _remove_stale_builds(root_dir, progress)
        tmp = root_dir / f".tmp-{suite}-{key}-{os.getpid()}"
        debs = cache_dir / "debs" / suite
        debs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        progress(f"rootfs: building {suite} ({len(spec['packages'])} packages) into {final}")
        try:
            tmp.mkdir()
            _mmdebstrap(spec, tmp / "root", debs, progress, timeout)
            _prepare(tmp / "root")
            (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")
        except BaseException:
            safe_rmtree(tmp)
            raise
        if final.exists():  # an unmarked leftover from an old, differently written build
            safe_rmtree(final)
        tmp.rename(final)
        progress(f"rootfs: ready in {time.monotonic() - started:.0f}s")
    return final / "root"


def _builder(root_dir: Path, argv: list[str] | None = None) -> Daemon:
    # A PID file, so a build orphaned by a killed caller can be stopped by the next one.
    return Daemon("mmdebstrap", argv or [], root_dir / ".build")


def _remove_stale_builds(root_dir: Path, progress: Progress) -> None:
    # We hold the lock, so any builder still running and any .tmp-* dir are from a killed build.
    _builder(root_dir).stop(timeout=15)
    for stale in root_dir.glob(".tmp-*"):
        progress(f"rootfs: removing interrupted build {stale.name}")
        safe_rmtree(stale)  # unmounts the /proc, /sys, /dev a killed mmdebstrap leaves inside


def _mmdebstrap(spec: dict, target: Path, debs: Path, progress: Progress, timeout: float) -> None:
    which_or_fail("mmdebstrap", "run scripts/setup (it installs mmdebstrap)")
    argv = [
        "mmdebstrap",
        "--mode=root",
        f"--variant={spec['variant']}",
        "--include=" + ",".join(spec["packages"]),
        # Keep the essential .debs in the archive dir so sync-out can save them too.
        "--skip=essential/unlink",
        *(f"--aptopt={opt}" for opt in spec["aptopts"]),
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
        spec["suite"],
        str(target),
        *spec["sources"],
    ]
    builder = _builder(target.parent.parent, argv)
    builder.log_path.unlink(missing_ok=True)
    builder.start()
    try:
        rc = _follow(builder, progress, timeout)
    finally:
        builder.stop(timeout=15)  # no-op once it has exited
    if rc != 0 or not (target / "etc" / "os-release").exists():
        why = "timed out" if rc is None else f"exit {rc}"
        raise CommandError(f"mmdebstrap {why}; log {builder.log_path}:\n{builder.log_tail(30)}")


def _follow(builder: Daemon, progress: Progress, timeout: float) -> int | None:
    """Pass the builder's "I:/W:/E:" lines to progress until it exits; None on timeout."""
    started = time.monotonic()
    offset = 0
    rc = None
    while rc is None and time.monotonic() - started < timeout:
        rc = builder.wait(0.5)
        with open(builder.log_path, "rb") as log:
            log.seek(offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # leave a partial last line for next time
        offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if line.startswith(("I: ", "W: ", "E: ")):
                progress(f"rootfs: [{time.monotonic() - started:4.0f}s] {line[3:]}")
    return rc


def _prepare(root: Path) -> None:
    """Make the tree a neutral base: no identity of its own, apt lists considered stale."""
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()  # per-host keys are generated into each upper dir
    (root / "etc" / "machine-id").write_text("")  # systemd fills it on first boot
    (root / "etc" / "hostname").write_text("localhost\n")
    resolv = root / "etc" / "resolv.conf"
    if resolv.exists() or resolv.is_symlink():
        resolv.unlink()
    # An old mtime makes `apt: update_cache: yes, cache_valid_time: N` really update on a
    # fresh host; otherwise it skips and installs fail with "No package matching ...".
    lists = root / "var" / "lib" / "apt" / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    os.utime(lists, (0, 0))
