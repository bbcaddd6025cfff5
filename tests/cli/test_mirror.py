"""`stand mirror STACK SOURCE` pushes a model into the stand's mirror (real seaweedfs on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infra.artifacts import s3
from infra.artifacts.model import MANIFEST, pull_model
from infra.cli import app
from infra.config import load_stand
from infra.config.contract import Mirror
from infra.config.outputs import model_outputs
from infra.local.seaweed import SeaweedPorts, SeaweedServer


@pytest.fixture(scope="module")
def mirror_state(tmp_path_factory):
    """A state dir whose local outputs.json points the mirror at a real S3 server."""
    server = SeaweedServer(tmp_path_factory.mktemp("mirror-s3"), ports=SeaweedPorts.free(), name="mirror-s3")
    endpoint = server.start()
    stand = load_stand("local")
    s3.ensure_bucket(s3.client(endpoint), stand.mirror_bucket)
    state = tmp_path_factory.mktemp("state")
    outputs = model_outputs(stand, mirror=Mirror(bucket=stand.mirror_bucket, endpoint=endpoint.url,
                                                 access_key=endpoint.access_key, secret_key=endpoint.secret_key))
    (state / "local").mkdir()
    (state / "local" / "outputs.json").write_text(json.dumps(outputs.as_json()))
    yield state, endpoint, stand
    server.stop()


def test_mirror_pushes_a_model_directory_with_its_manifest(mirror_state, smollm2_dir, tmp_path, monkeypatch):
    state, endpoint, stand = mirror_state
    monkeypatch.setenv("STAND_STATE_DIR", str(state))
    result = CliRunner().invoke(app, ["mirror", "local", str(smollm2_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == stand.model.source  # the stand's own prefix, so site.yml picks it up
    client = s3.client(endpoint)
    keys = s3.list_objects(client, stand.mirror_bucket, data["prefix"])
    assert f"{data['prefix']}/{MANIFEST}" in keys and f"{data['prefix']}/config.json" in keys
    pulled = pull_model(client, stand.mirror_bucket, data["prefix"], tmp_path / "pulled")  # verifies sha256
    assert (pulled / "model.safetensors").stat().st_size == (smollm2_dir / "model.safetensors").stat().st_size


def test_mirror_refuses_a_source_that_is_not_a_model(mirror_state, tmp_path, monkeypatch):
    state, _, _ = mirror_state
    monkeypatch.setenv("STAND_STATE_DIR", str(state))
    (tmp_path / "notes.txt").write_text("not a model")
    result = CliRunner().invoke(app, ["mirror", "local", str(tmp_path / "notes.txt")])
    assert result.exit_code == 1 and "neither a local Hugging Face model folder nor a .gguf file" in result.output


def test_mirror_needs_a_stand_that_is_up(tmp_path, smollm2_dir, monkeypatch):
    monkeypatch.setenv("STAND_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["mirror", "local", str(smollm2_dir)])
    assert result.exit_code == 1 and "bring the stand up first" in result.output
