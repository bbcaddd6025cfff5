"""Stands whose machines already exist (onprem) or are brought up by the driver (local): Pulumi
creates nothing and exports the hosts in the same shape as cloud hosts, so one inventory reads both."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class ExistingHost:
    name: str
    roles: tuple[str, ...]
    address: str
    gpus: int
    gpu: str | None
    ssh_user: str


@dataclass(frozen=True)
class ExistingHostsArgs:
    hosts: list[ExistingHost]


class ExistingHosts(pulumi.ComponentResource):
    hosts: list[dict]

    def __init__(self, name: str, args: ExistingHostsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:ExistingHosts", name, None, opts)
        self.hosts = [{"name": h.name, "roles": list(h.roles), "private_address": h.address,
                       "public_address": None, "gpus": h.gpus, "gpu": h.gpu, "ssh_user": h.ssh_user}
                      for h in args.hosts]
        self.register_outputs({"hosts": self.hosts})
