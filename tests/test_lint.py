"""The linters, offline, with the repository's pinned configs: ruff ([tool.ruff] in pyproject.toml),
yamllint (.yamllint) and ansible-lint with the production profile (.ansible-lint)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    return subprocess.run([str(BIN / tool), *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("tool,args", [
    ("ruff", ("check", "--no-cache", ".")),
    ("yamllint", ("--strict", ".")),
    ("ansible-lint", ("--offline", "--nocolor", "-f", "pep8")),
])
def test_linter_is_clean(tool, args):
    result = run(tool, *args)
    assert result.returncode == 0, f"{tool}:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
