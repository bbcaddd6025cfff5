"""`init_backend` against a real S3 server (seaweedfs `weed mini`, signature checks on) on 127.0.0.1."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.artifacts.s3 import S3Endpoint, client
from infra.backend import KEY_HINTS, BackendError, init_backend, login_line
from infra.local.seaweed import SeaweedPorts, SeaweedServer

OTHER_BUCKET = "others-state"


class TwoAccountSeaweed(SeaweedServer):
    """The colleague's server with a second identity that owns only OTHER_BUCKET."""

    other = ("OTHERACCOUNTKEY00000", "othersecret0000000000000000000000000000")

    def _write_s3_config(self) -> None:
        super()._write_s3_config()
        config = json.loads(self.config_path.read_text())
        config["identities"].append({
            "name": "other",
            "credentials": [{"accessKey": self.other[0], "secretKey": self.other[1]}],
            "actions": [f"Admin:{OTHER_BUCKET}", f"Read:{OTHER_BUCKET}", f"Write:{OTHER_BUCKET}",
                        f"List:{OTHER_BUCKET}"],
        })
        self.config_path.write_text(json.dumps(config))


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = TwoAccountSeaweed(tmp_path_factory.mktemp("backend-s3"), ports=SeaweedPorts.free(), name="backend-s3")
    endpoint = server.start()
    try:
        yield server, endpoint
    finally:
        server.stop()
    assert not server.running


def _s3(endpoint: S3Endpoint):
    return client(endpoint, attempts=1)


def test_creates_a_versioned_private_bucket_and_prints_the_login_line(s3):
    _, ep = s3
    line = init_backend("yandex", "team-state", ep.url, access_key=ep.access_key, secret_key=ep.secret_key)

    m = re.fullmatch(r"pulumi login '(s3://[^']+)'", line)
    assert m, line
    url = urlsplit(m.group(1))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.netloc == "team-state"
    assert query == {"endpoint": urlsplit(ep.url).netloc, "region": "ru-central1",
                     "s3ForcePathStyle": "true", "disableSSL": "true"}

    api = _s3(ep)
    assert "team-state" in [b["Name"] for b in api.list_buckets()["Buckets"]]
    assert api.get_bucket_versioning(Bucket="team-state")["Status"] == "Enabled"
    grants = api.get_bucket_acl(Bucket="team-state")["Grants"]
    assert not [g for g in grants if g["Grantee"].get("URI", "").endswith(("AllUsers", "AuthenticatedUsers"))]


def test_second_run_is_idempotent_and_keeps_the_state(s3):
    _, ep = s3
    first = init_backend("selectel", "team-state-2", ep.url, access_key=ep.access_key, secret_key=ep.secret_key)
    api = _s3(ep)
    api.put_object(Bucket="team-state-2", Key=".pulumi/stacks/prod.json", Body=b"{}")
    second = init_backend("selectel", "team-state-2", ep.url, access_key=ep.access_key, secret_key=ep.secret_key)
    assert first == second
    assert "region=ru-7" in second
    assert api.get_object(Bucket="team-state-2", Key=".pulumi/stacks/prod.json")["Body"].read() == b"{}"
    assert api.get_bucket_versioning(Bucket="team-state-2")["Status"] == "Enabled"
    assert sum(b["Name"] == "team-state-2" for b in api.list_buckets()["Buckets"]) == 1


@pytest.mark.parametrize("which", ["secret", "access"])
def test_wrong_credentials_give_one_clear_line(s3, which):
    _, ep = s3
    access = ep.access_key if which == "secret" else "NOSUCHKEY0000000000"
    secret = "wrong-secret-000000000000000000000000000" if which == "secret" else ep.secret_key
    with pytest.raises(BackendError) as err:
        init_backend("yandex", "never-created", ep.url, access_key=access, secret_key=secret)
    message = str(err.value)
    assert "\n" not in message
    assert ("secret key does not match" if which == "secret" else "access key is not known") in message
    assert KEY_HINTS["yandex"] in message  # names the fix
    assert "never-created" not in [b["Name"] for b in _s3(ep).list_buckets()["Buckets"]]


def test_a_bucket_of_another_account_is_refused(s3):
    server, ep = s3
    _s3(ep).create_bucket(Bucket="admins-state")  # exists, but not the other account's
    with pytest.raises(BackendError) as err:
        init_backend("vk", "admins-state", ep.url, access_key=server.other[0], secret_key=server.other[1])
    assert "bucket admins-state" in str(err.value)
    assert "choose another --bucket" in str(err.value)


def test_unreachable_endpoint_names_the_fix():
    with pytest.raises(BackendError, match=r"cannot reach the S3 endpoint http://127.0.0.1:9: check --endpoint"):
        init_backend("vk", "any-bucket", "http://127.0.0.1:9", access_key="a", secret_key="b")


def test_cloud_defaults_come_from_the_catalog():
    assert login_line("b", "https://storage.yandexcloud.net", "ru-central1") == (
        "pulumi login 's3://b?endpoint=storage.yandexcloud.net&region=ru-central1&s3ForcePathStyle=true'")
    with pytest.raises(BackendError, match="no object storage in the catalog"):
        init_backend("onprem", "b", access_key="a", secret_key="b")
    with pytest.raises(BackendError, match="not a URL"):
        init_backend("yandex", "b", "storage.yandexcloud.net", access_key="a", secret_key="b")
