"""Secret references. A secret is never written in plain text in a stack file.

Three forms, one per consumer:
- ``{secure: <ciphertext>}``: a Pulumi secret (``pulumi config set --secret --path ...``), for cloud
  stacks; Pulumi decrypts it, and the driver asks the Pulumi CLI for it.
- ``{env: NAME}``: read from the environment at run time (CI, a vault agent).
- ``{generated: true}``: created once by the driver and kept in the stand's state directory
  (mode 0600); for stands the driver brings up itself, such as ``local``.
"""

from __future__ import annotations

import os
import secrets as _random
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

PLAINTEXT_FIX = (
    "store it as a Pulumi secret (pulumi config set --secret --path '<key>' VALUE), "
    "or reference it as {env: VAR_NAME} or {generated: true}"
)


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secure: str | None = None
    env: str | None = None
    generated: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_plain_text(cls, value):
        if isinstance(value, (str, int, float)):
            raise ValueError(f"a secret must not be written in plain text; {PLAINTEXT_FIX}")
        return value

    @model_validator(mode="after")
    def _exactly_one_form(self):
        forms = [f for f in ("secure", "env", "generated") if getattr(self, f)]
        if len(forms) != 1:
            raise ValueError("give exactly one of secure, env or generated: true")
        return self

    @property
    def kind(self) -> str:
        return "secure" if self.secure else "env" if self.env else "generated"


class SecretUnavailable(RuntimeError):
    pass


def resolve(ref: SecretRef, *, path: str, stack: str, state_dir: Path) -> str:
    """The secret's value for the driver (Ansible vars). ``path`` is its config path, e.g. gateway.master_key."""
    if ref.env:
        value = os.environ.get(ref.env)
        if not value:
            raise SecretUnavailable(f"{path}: environment variable {ref.env} is not set; export it before running")
        return value
    if ref.generated:
        return _generated(state_dir / "secrets" / path)
    return _from_pulumi(stack, path)


def _generated(file: Path) -> str:
    if file.exists():
        return file.read_text().strip()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = _random.token_urlsafe(32)
    tmp = file.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(value + "\n")
    tmp.replace(file)  # atomic: a crash never leaves a half-written key that later runs would trust
    return value


def _from_pulumi(stack: str, path: str) -> str:
    from infra import PROJECT

    try:
        out = subprocess.run(
            ["pulumi", "config", "get", "--stack", stack, "--path", f"{PROJECT}:{path}"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except FileNotFoundError:
        raise SecretUnavailable(
            f"{path} is a Pulumi secret and the pulumi CLI is not installed; install it, or use {{env: VAR}}"
        ) from None
    if out.returncode != 0:
        raise SecretUnavailable(f"{path}: pulumi config get failed: {out.stderr.strip()}")
    return out.stdout.strip()
