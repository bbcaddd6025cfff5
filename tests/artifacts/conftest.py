"""Fixtures for the artifact store tests: a real S3 server (seaweedfs, signature checks on).

Reusable elsewhere by importing them into another conftest.py:

    from artifacts.conftest import s3_server, s3_endpoint, s3_client, bucket  # noqa: F401

- ``s3_server`` (session): ``weed mini`` on 127.0.0.1 with free ports (never the stand's), started
  and stopped by its PID file; a SeaweedServer, so ``.endpoint`` has URL and keys.
- ``s3_endpoint`` / ``s3_client`` (session): its S3Endpoint and a boto3 client.
- ``bucket`` (function): a new, empty, private bucket on it.
- ``smollm2_dir`` (session): SmolLM2-135M-Instruct as a HF folder (user cache; converted once).

Tests marked ``slow`` convert a model or download many wheels; they run by default (CI too),
``-m "not slow"`` skips them.
"""

from __future__ import annotations

import uuid

import pytest

from infra.artifacts import s3
from infra.local.seaweed import SeaweedPorts, SeaweedServer


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: converts a model or downloads many wheels (minutes)")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = SeaweedServer(tmp_path_factory.mktemp("s3"), ports=SeaweedPorts.free("127.0.0.1"), name="seaweedfs-test")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(s3_server) -> s3.S3Endpoint:
    return s3_server.endpoint


@pytest.fixture(scope="session")
def s3_client(s3_endpoint):
    return s3.client(s3_endpoint)


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.ensure_bucket(s3_client, name)
    return name


@pytest.fixture(scope="session")
def smollm2_dir():
    from infra.artifacts.model import prepare_smollm2

    return prepare_smollm2()
