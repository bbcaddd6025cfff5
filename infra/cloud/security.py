"""Security groups, one per group of infra/ingress.py's table (edge, engine, and on Yandex Managed
Kubernetes k8s-master and k8s-nodes). The rules are the table's rows, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.cloud.providers import provider_for
from infra.ingress import Ingress


@dataclass(frozen=True)
class SecurityArgs:
    target: str
    name: str
    network_id: pulumi.Input[str]
    groups: dict[str, list[Ingress]]  # infra.ingress.groups(stand)
    labels: dict[str, str]


class SecurityGroups(pulumi.ComponentResource):
    ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:SecurityGroups", name, None, opts)
        provider = provider_for(args.target)
        self.ids = {group: provider.security_group(self, f"{args.name}-{group}", group, rules, args.network_id, args.labels)
                    for group, rules in args.groups.items()}
        self.register_outputs({f"{group}_id": sg for group, sg in self.ids.items()})
