"""Small, safe wrappers around the system calls the local hosts need.

Every subprocess gets a timeout (a hung `ip`, `mount` or `apt-get` must not hang a test run),
and directory removal refuses to cross into anything still mounted (a killed mmdebstrap or
nspawn can leave /proc, /dev or an overlay mounted inside a tree we want to delete).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from infra.errors import StandError


class CommandError(StandError):
    """A command failed or timed out; the message carries its output."""


def run(
    argv: Sequence[str | os.PathLike],
    timeout: float = 30.0,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run a command to completion, capturing text output; kill its whole group on timeout."""
    args = [str(a) for a in argv]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # so a timeout can kill grandchildren too
    )
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        out, err = proc.communicate()
        raise CommandError(f"timed out after {timeout:.0f}s: {' '.join(args)}\n{err.strip()}") from None
    result = subprocess.CompletedProcess(args, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise CommandError(
            f"exit {proc.returncode}: {' '.join(args)}\n{(err or out).strip()}"
        )
    return result


def kill_group(pgid: int) -> None:
    """SIGKILL a process group we created (start_new_session); ignore if already gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _unescape_mount_field(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal.
    return (
        field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
    )


def mounts() -> list[tuple[str, str, str, str]]:
    """(source, mountpoint, fstype, options) for every mount in our mount namespace."""
    rows = []
    with open("/proc/mounts", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 4:
                rows.append((parts[0], _unescape_mount_field(parts[1]), parts[2], parts[3]))
    return rows


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def mounts_under(root: Path) -> list[str]:
    """Mountpoints at or below root, deepest first (the order to unmount them in)."""
    real = os.path.realpath(root)
    found = [mp for _, mp, _, _ in mounts() if _is_under(mp, real)]
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_under(root: Path, timeout: float = 30.0) -> None:
    """Unmount everything at or below root; fall back to a lazy unmount if busy."""
    for mp in mounts_under(root):
        if run(["umount", mp], timeout=timeout, check=False).returncode != 0:
            run(["umount", "-l", mp], timeout=timeout, check=False)
    left = mounts_under(root)
    if left:
        raise CommandError(f"still mounted under {root}: {', '.join(left)}")


def safe_rmtree(path: Path, timeout: float = 300.0) -> None:
    """Delete a tree that may contain stale mounts, never descending into a mounted filesystem."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    unmount_under(path)
    # --one-file-system is a second guard in case a mount appeared meanwhile.
    run(["rm", "-rf", "--one-file-system", "--", str(path)], timeout=timeout)


def which_or_fail(binary: str, hint: str) -> str:
    found = shutil.which(binary)
    if not found:
        raise PrerequisiteError(f"{binary} missing: {hint}")
    return found


class PrerequisiteError(StandError):
    """Something the local hosts need is not there (not root, a package missing, ...)."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError("not root: local hosts need root (network namespaces, mounts, nspawn)")
