"""Ansible inventory of llm-stands: every stand's hosts, groups and variables from the stand model.

    # inventory/stands.yml
    plugin: stands

Hosts and their addresses come from the stack's outputs (.stand/<stack>/outputs.json, written by
`pulumi stack output --json --show-secrets -s STACK > ...` or by the driver; else the Pulumi CLI
when it is installed); onprem and local stands are derived from the model alone. Variables come
from infra/ansible_vars.py, the same mapping the driver uses. Secrets appear as lookups that are
resolved only when a task uses them.

Groups: per stand STACK with children STACK_engine, STACK_edge, STACK_monitoring; and the global
groups engine, edge, monitoring (whose children are the per-stand ones). So
`ansible-playbook playbooks/site.yml -l onprem` configures the onprem stand.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: stands
short_description: llm-stands stands (stacks/Pulumi.*.yaml) as inventory
description:
  - Reads the stand model of each stack and the stack's outputs, and adds its hosts with the
    variables infra/ansible_vars.py maps from the model.
  - A cloud stack without outputs yet is skipped with a warning.
options:
  plugin:
    description: Marks the file as this plugin's source.
    required: true
    choices: [stands]
  stacks:
    description:
      - Stacks to include; empty means every stacks/Pulumi.*.yaml.
      - A stack named here that is missing or has configuration problems is an error; in the
        all-stacks mode it is skipped with a warning.
    type: list
    elements: str
    default: []
    env:
      - name: STAND_STACKS
  pulumi:
    description: Ask the Pulumi CLI for a cloud stack's outputs when outputs.json is absent.
    type: bool
    default: true
    env:
      - name: STAND_INVENTORY_PULUMI
"""

import os
import sys

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.template import trust_as_template

try:
    import infra  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from infra import ansible_vars as av  # noqa: E402
from infra.config.contract import ROLES  # noqa: E402
from infra.config.loader import STACKS_DIR, load_stand, stack_name  # noqa: E402
from infra.config.outputs import outputs_path, read_outputs  # noqa: E402
from infra.errors import StandError  # noqa: E402


class InventoryModule(BaseInventoryPlugin):
    NAME = "stands"

    def verify_file(self, path):
        return super().verify_file(path) and os.path.basename(path) in ("stands.yml", "stands.yaml")

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        named = [s.strip() for s in self.get_option("stacks") if s.strip()]
        stacks = named or sorted(stack_name(p) for p in STACKS_DIR.glob("Pulumi.*.yaml"))
        owners: dict[str, str] = {}
        for stack in stacks:
            stand = self._stand(stack, strict=bool(named))
            if stand is None:
                continue
            try:
                outputs = read_outputs(stand, run_pulumi=self.get_option("pulumi"))
            except StandError as exc:
                self._skip(str(exc), strict=bool(named))
                continue
            if outputs is None:
                self.display.warning(
                    f"stand {stack}: a {stand.target} stack with no outputs yet, skipped; after "
                    f"`pulumi up -s {stack}` run `pulumi stack output --json --show-secrets -s {stack} "
                    f"> {outputs_path(stack)}` (or install the pulumi CLI)")
                continue
            self._add_stand(stand, outputs, owners)

    def _stand(self, stack, strict):
        try:
            return load_stand(stack)
        except StandError as exc:
            self._skip(f"stand {stack}: {exc}", strict)
            return None

    def _skip(self, message, strict):
        if strict:
            raise AnsibleParserError(message)
        self.display.warning(f"{message} (skipped)")

    def _add_stand(self, stand, outputs, owners):
        stack = stand.stack
        lookup = av.lookup_resolver(stand)
        # Only our own secret lookups are templates; model strings are never rendered.
        group_vars = av.group_vars(stand, lambda path, ref: trust_as_template(lookup(path, ref)), outputs)
        self.inventory.add_group(stack)
        for name, value in group_vars.items():
            self.inventory.set_variable(stack, name, value)
        for role in ROLES:
            sub = self.inventory.add_group(f"{stack}_{role}")
            self.inventory.add_child(stack, sub)
            self.inventory.add_group(role)
            self.inventory.add_child(role, sub)
        for host in outputs.hosts:
            if host.name in owners:
                raise AnsibleParserError(f"host {host.name} is in stands {owners[host.name]} and {stack}: "
                                         "host names must be unique across stands")
            owners[host.name] = stack
            # Only in the role groups: they are the stand group's children, so `-l STACK` still matches.
            for role in host.roles:
                self.inventory.add_host(host.name, group=f"{stack}_{role}")
            for name, value in av.host_vars(stand, host, outputs).items():
                self.inventory.set_variable(host.name, name, value)
