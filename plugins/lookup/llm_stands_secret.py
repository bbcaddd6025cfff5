"""lookup('llm_stands_secret', PATH, stack=STACK): one secret of a stand, resolved when used.

PATH is the secret's config path (engine.api_key, gateway.consumers[0].key) or a secret stack
output (outputs.mirror.secret_key). The inventory hands secrets to tasks this way, so they are
never printed by ansible-inventory nor stored by the inventory.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: llm_stands_secret
short_description: A secret of an llm-stands stand (env, generated, Pulumi secret or stack output)
description:
  - Resolves secrets of the stand model through infra.config.secrets.resolve, and secret stack
    outputs from the stack's outputs, at the moment a task uses them.
options:
  _terms:
    description: Config paths of secrets, e.g. engine.api_key, or outputs.mirror.secret_key.
    required: true
  stack:
    description: The stand's stack name.
    type: str
    required: true
"""

import os
import sys

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

try:
    import infra  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        from infra.config.secrets import resolve_secret
        from infra.errors import StandError

        self.set_options(var_options=variables, direct=kwargs)
        stack = self.get_option("stack")
        values = []
        for path in terms:
            try:
                values.append(resolve_secret(stack, path))
            except StandError as exc:  # one clear line instead of a traceback
                raise AnsibleLookupError(f"secret {path} of stand {stack}: {exc}") from None
        return values
