"""Stands whose machines already exist (onprem) or are brought up by the driver (local): Pulumi
creates nothing and exports the hosts in the contract's shape, so one inventory reads both."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config.contract import Host


@dataclass(frozen=True)
class ExistingHostsArgs:
    hosts: list[Host]


class ExistingHosts(pulumi.ComponentResource):
    hosts: list[dict]

    def __init__(self, name: str, args: ExistingHostsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:ExistingHosts", name, None, opts)
        self.hosts = [h.as_output() for h in args.hosts]
        self.register_outputs({"hosts": self.hosts})
