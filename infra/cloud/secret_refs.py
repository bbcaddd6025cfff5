"""SecretRef -> pulumi secret Output, for the values the program itself deploys (Kubernetes Secrets).

VM stands never need a secret in Pulumi: Ansible puts them on the hosts.
"""

from __future__ import annotations

import os
from typing import Protocol

import pulumi
import pulumi_random as random

from infra import PROJECT
from infra.config.secrets import SecretRef, SecretUnavailable


class SecretSource(Protocol):
    def value(self, ref: SecretRef, path: str) -> pulumi.Output[str]:
        """The secret at config path ``path`` (e.g. ``gateway.master_key``), always marked secret."""


class PulumiSecrets:
    """What `pulumi up` uses: secure values from the stack's decrypted config, env from the environment."""

    def value(self, ref: SecretRef, path: str) -> pulumi.Output[str]:
        if ref.secure:
            section, *keys = path.split(".")
            # The CLI decrypts {secure: ...} leaves inside the section object; the Output stays secret.
            obj = pulumi.Config(PROJECT).require_secret_object(section)
            return obj.apply(lambda data: _navigate(data, keys, path))
        if ref.env:
            found = os.environ.get(ref.env)
            if not found:
                raise SecretUnavailable(f"{path}: environment variable {ref.env} is not set; export it before `pulumi up`")
            return pulumi.Output.secret(found)
        # generated: created once and kept (encrypted) in the stack's state.
        name = "secret-" + path.replace(".", "-").replace("_", "-")
        return pulumi.Output.secret(random.RandomPassword(name, length=40, special=False).result)


class PlaceholderSecrets:
    """`stand plan`: never reads a real secret; every value is a marked placeholder."""

    def value(self, ref: SecretRef, path: str) -> pulumi.Output[str]:
        return pulumi.Output.secret(f"<{ref.kind}:{path}>")


def _navigate(data, keys: list[str], path: str) -> str:
    for key in keys:
        data = data[int(key)] if isinstance(data, list) else data.get(key) if isinstance(data, dict) else None
        if data is None:
            raise SecretUnavailable(f"{path}: not in the stack's config; pulumi config set --secret --path '{PROJECT}:{path}' VALUE")
    return str(data)
