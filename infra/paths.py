"""Where the driver keeps things: per-stand state in the repository, shared caches in the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

from infra.config.loader import REPO_ROOT


def state_dir(stack: str) -> Path:
    """Generated secrets, PID files, logs, captured stack outputs of one stand (git-ignored)."""
    root = Path(os.environ.get("STAND_STATE_DIR", REPO_ROOT / ".stand"))
    return root / stack


def private_state(stack: str) -> Path:
    """The stand's state dir, created if needed; it and the state root are 0700 (secrets live there)."""
    from infra.fsutil import private_dir

    directory = state_dir(stack)
    private_dir(directory.parent)
    return private_dir(directory)


def cache_dir() -> Path:
    """Rootfs, wheelhouse and converted models, reused by every stand and clone on this machine."""
    base = os.environ.get("STAND_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-stands"
    return Path(base)
