"""The fallback stand: its gateway endpoint, read from its own stack's outputs."""

from __future__ import annotations

import pulumi

from infra import PROJECT


def stack_reference_name(organization: str, stack: str) -> str:
    return f"{organization}/{PROJECT}/{stack}"


def fallback_endpoint(stack: str | None, organization: str) -> pulumi.Output[str] | None:
    """The fallback stand's `gateway_endpoint`; None when the stand has no fallback.

    The fallback stack must be deployed first (`pulumi up -s fallback`), in the same organization.
    """
    if not stack:
        return None
    ref = pulumi.StackReference(stack_reference_name(organization, stack))
    return ref.get_output("gateway_endpoint")
