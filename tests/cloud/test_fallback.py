"""A stand with gateway.fallback_stack reads the fallback stand's gateway endpoint from its stack."""

from __future__ import annotations

from infra.cloud.plan import run_program

from .conftest import run_of


def test_prod_references_the_fallback_stack():
    run = run_of("prod")
    refs = run.of_type("pulumi:pulumi:StackReference")
    assert [r.name for r in refs] == ["organization/llm-stands/fallback"]
    assert run.outputs["fallback_endpoint"] == refs[0].state["outputs"]["gateway_endpoint"]


def test_stacks_without_fallback_reference_nothing(run):
    if run.stand.gateway.fallback_stack:
        return
    assert run.of_type("pulumi:pulumi:StackReference") == []
    assert run.outputs["fallback_endpoint"] is None


def test_organization_and_the_fallback_outputs_come_from_config():
    run = run_program("prod", config={"llm-stands-cloud:organization": "acme"},
                      stack_outputs={"acme/llm-stands/fallback": {"gateway_endpoint": "https://fallback.example"}})
    assert [r.name for r in run.of_type("pulumi:pulumi:StackReference")] == ["acme/llm-stands/fallback"]
    assert run.outputs["fallback_endpoint"] == "https://fallback.example"
