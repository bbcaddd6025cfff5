"""The stack outputs contract (infra/config/contract.py) holds for every producer: the Pulumi
program (here under mocks), the onprem derivation and the local driver's file."""

from __future__ import annotations

import json

import pytest

from infra.config.contract import StackOutputs
from infra.config.loader import load_stand
from infra.config.outputs import derived_outputs, model_outputs, write_outputs

from .conftest import STACKS, run_of


@pytest.mark.parametrize("stack", STACKS)
def test_the_mocked_pulumi_export_validates(stack):
    outputs = StackOutputs.model_validate(run_of(stack).outputs)
    stand = load_stand(stack)
    assert outputs.stand == stack and outputs.target == stand.target
    planned = {h.name: h for h in stand.planned_hosts()}
    for host in outputs.hosts:  # the same hosts the model plans, with the addresses Pulumi assigned
        assert host.model_copy(update={"public_address": None}) == planned[host.name]


def test_the_onprem_derivation_is_what_the_program_exports():
    assert model_outputs(load_stand("onprem")) == StackOutputs.model_validate(run_of("onprem").outputs)


def test_the_local_drivers_file_validates(tmp_path, monkeypatch):
    monkeypatch.setenv("STAND_STATE_DIR", str(tmp_path))
    stand = load_stand("local")
    creds = tmp_path / "local" / "seaweedfs" / "credentials.json"  # what the local S3 server generates
    creds.parent.mkdir(parents=True)
    creds.write_text(json.dumps({"access_key": "AK", "secret_key": "SK"}))
    path = write_outputs(derived_outputs(stand))
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the mirror's keys
    written = StackOutputs.model_validate(json.loads(path.read_text()))
    assert written.mirror.secret_key == "SK" and written.wheelhouse_url and written.ssh_private_key
    assert written.hosts == tuple(stand.planned_hosts())


@pytest.mark.parametrize("broken", [
    {"hosts": [{"name": "x", "roles": ["engine"], "private_address": "10.0.0.1", "ssh_user": "u; rm -rf /"}]},
    {"hosts": [{"name": "x", "roles": ["gpu-box"], "private_address": "10.0.0.1", "ssh_user": "u"}]},
    {"hosts": [{"name": "x", "roles": ["engine"], "private_address": "not-an-address", "ssh_user": "u"}]},
    {"unexpected": 1},
])
def test_the_contract_refuses_what_it_does_not_define(broken):
    base = run_of("prod").outputs
    with pytest.raises(ValueError):
        StackOutputs.model_validate({**base, **broken})
