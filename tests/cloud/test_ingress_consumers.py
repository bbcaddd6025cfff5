"""infra/ingress.py is the one ingress table: security groups, host firewalls and the Kubernetes
Service are all made from it, so a row added there reaches all three and nothing else opens."""

from __future__ import annotations

import pytest

from infra import ansible_vars as av
from infra.config.loader import load_stand
from infra.config.outputs import model_outputs
from infra.ingress import SSH_PORT, groups, ingress, row

from .conftest import STACKS, run_of
from .policy import ingress as opened


def _expected(stack):
    """(group, protocol, from, to, source) for every row of the table, as the cloud writes it."""
    stand = load_stand(stack)
    out = set()
    for group, rows in groups(stand).items():
        for r in rows:
            for source in r.sources or (r.predefined,):
                out.add((group, r.protocol.upper(), r.from_port, r.to_port, source))
    return out


@pytest.mark.parametrize("stack", [s for s in STACKS if load_stand(s).is_cloud])
def test_security_groups_are_the_table(stack):
    run = run_of(stack)
    actual = {(r.group, r.protocol, r.from_port, r.to_port, r.source) for r in opened(run)}
    assert actual == _expected(stack)


@pytest.mark.parametrize("stack", ["onprem", "local", "prod"])
def test_host_firewalls_are_the_table(stack):
    stand = load_stand(stack)
    outputs = model_outputs(stand, fallback_endpoint=None)
    table = ingress(stand)
    for host in outputs.hosts:
        variables = av.host_vars(stand, host, outputs)
        rows = [r for r in table if r.applies_to(host.roles)]
        assert {(r["port"], tuple(r["sources"])) for r in variables["common_firewall_rules"]} == \
            {(r.port, r.sources) for r in rows if r.port != SSH_PORT}
        assert set(variables["common_admin_cidrs"]) == {s for r in rows if r.port == SSH_PORT for s in r.sources}


def test_the_kubernetes_gateway_admits_the_https_rows_sources():
    run = run_of("test")
    service = next(r for r in run.of_type(":Service") if r.inputs["spec"].get("type") == "LoadBalancer")
    assert service.inputs["spec"]["loadBalancerSourceRanges"] == list(row(run.stand, "gateway-https").sources)


def test_a_new_row_reaches_every_consumer(monkeypatch):
    """Add one row: the security groups, the firewalls and the plan all carry it."""
    import infra.ingress as table

    original = table.ingress

    def with_extra(stand):
        return [*original(stand), table._row("extra", "a new service", 9999, (stand.network.subnet_cidr,), ("edge",))]

    monkeypatch.setattr(table, "ingress", with_extra)
    stand = load_stand("dev")
    assert any(r.port == 9999 for r in groups(stand)["edge"])
    outputs = model_outputs(stand, fallback_endpoint=None)
    firewall = av.host_vars(stand, outputs.edge, outputs)["common_firewall_rules"]
    assert any(r["port"] == 9999 for r in firewall)
    from infra.cloud.plan import run_program

    assert any(r.from_port == 9999 and r.group == "edge" for r in opened(run_program(stand)))
