"""The stack outputs contract: what a provisioned stand exports, and the one shape of a host.

The Pulumi program exports it (``pulumi stack output --json``), onprem stands derive it from the
model, the local stand writes it to ``.stand/local/outputs.json``; the inventory plugin, the
Ansible variables and the driver read it. One definition for all of them:

    {"stand": "prod", "target": "yandex",
     "hosts": [{"name", "roles", "private_address", "public_address", "gpus", "gpu", "ssh_user"}],
     "gateway_endpoint": "https://...", "mirror": {"bucket", "endpoint", "access_key", "secret_key"},
     "fallback_endpoint": "https://..." | null,
     "wheelhouse_url": "http://..." | null, "ssh_private_key": "/path" | null}   # local stand only
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

HostRole = Literal["engine", "edge", "monitoring"]
ROLES: tuple[HostRole, ...] = ("engine", "edge", "monitoring")
# POSIX portable user names: it goes into SSH command lines, so nothing else may pass.
PosixUser = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
HostName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Host(_Contract):
    """A host of a stand: planned by the model, created by Pulumi or nspawn, configured by Ansible."""

    name: HostName
    roles: tuple[HostRole, ...] = Field(min_length=1)
    private_address: IPv4Address
    public_address: IPv4Address | None = None
    gpus: int = Field(0, ge=0)
    gpu: str | None = None
    ssh_user: PosixUser

    @property
    def address(self) -> IPv4Address:
        """Where Ansible and the driver connect: the public address when the host has one."""
        return self.public_address or self.private_address

    def has(self, role: HostRole) -> bool:
        return role in self.roles

    def as_output(self, **overrides) -> dict:
        """The host as the ``hosts`` output carries it (Pulumi may put Outputs in ``overrides``)."""
        return {**self.model_dump(mode="json"), "roles": list(self.roles), **overrides}


class Mirror(_Contract):
    bucket: str
    endpoint: str | None = None
    access_key: str | None = None  # secret
    secret_key: str | None = None  # secret


class StackOutputs(_Contract):
    stand: str
    target: str
    hosts: tuple[Host, ...]
    gateway_endpoint: str | None = None
    mirror: Mirror
    fallback_endpoint: str | None = None
    # The local stand only: its HTTP wheelhouse on the bridge and the SSH key of its hosts.
    wheelhouse_url: str | None = None
    ssh_private_key: str | None = None

    def with_role(self, role: HostRole) -> list[Host]:
        return [h for h in self.hosts if h.has(role)]

    @property
    def edge(self) -> Host | None:
        return next(iter(self.with_role("edge")), None)

    def as_json(self) -> dict:
        return self.model_dump(mode="json")
