"""The S3 layer against a real seaweedfs: buckets, round trips, and one-line errors."""

from __future__ import annotations

import dataclasses
import os
import socket

import boto3
import botocore
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from infra.artifacts import s3
from infra.local.seaweed import SeaweedError, SeaweedPorts, SeaweedServer

MiB = 1024 * 1024


def make_tree(root):
    files = {
        "config.json": b'{"a": 1}\n',
        "sub/dir/weights.bin": os.urandom(300_000),
        "empty.txt": b"",
        "name with space.txt": b"spaces survive\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_ensure_bucket_creates_once_private_and_versioned(s3_client, s3_endpoint):
    name = "test-ensure-bucket"
    assert s3.ensure_bucket(s3_client, name, versioned=True) is True
    assert s3.ensure_bucket(s3_client, name, versioned=True) is False
    assert s3.bucket_versioned(s3_client, name)
    unsigned = Config(signature_version=botocore.UNSIGNED, s3={"addressing_style": "path"})
    anon = boto3.session.Session().client("s3", endpoint_url=s3_endpoint.url, region_name="us-east-1", config=unsigned)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        anon.list_objects_v2(Bucket=name)
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_round_trip_keeps_paths_and_bytes(s3_client, bucket, tmp_path):
    files = make_tree(tmp_path / "src")
    keys = s3.upload_dir(s3_client, bucket, tmp_path / "src", "runs/one")
    assert sorted(keys) == sorted(f"runs/one/{rel}" for rel in files)
    listed = s3.list_objects(s3_client, bucket, "runs/one")
    assert listed == {f"runs/one/{rel}": len(data) for rel, data in sorted(files.items())}
    got = s3.download_prefix(s3_client, bucket, "runs/one/", tmp_path / "dst")
    assert len(got) == len(files)
    for rel, data in files.items():
        assert (tmp_path / "dst" / rel).read_bytes() == data


def test_big_files_go_multipart(s3_client, bucket, tmp_path, monkeypatch):
    # 5 MiB is S3's smallest part: a 12 MiB file then travels as 3 parts, as a multi-GB shard would.
    monkeypatch.setattr(s3, "TRANSFER", TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    big = tmp_path / "src" / "model.safetensors"
    big.parent.mkdir()
    big.write_bytes(os.urandom(12 * MiB))
    s3.upload_dir(s3_client, bucket, tmp_path / "src", "big")
    head = s3_client.head_object(Bucket=bucket, Key="big/model.safetensors")
    assert head["ETag"].strip('"').endswith("-3")  # S3's multipart ETag: "<md5 of md5s>-<parts>"
    assert head["Metadata"][s3.SHA256_META] == s3.file_sha256(big)
    s3.download_prefix(s3_client, bucket, "big", tmp_path / "dst")
    assert s3.file_sha256(tmp_path / "dst" / "model.safetensors") == s3.file_sha256(big)


def test_reupload_skips_unchanged_files(s3_client, bucket, tmp_path, monkeypatch):
    make_tree(tmp_path / "src")
    s3.upload_dir(s3_client, bucket, tmp_path / "src", "p")
    sent = []
    real = s3.upload_file
    monkeypatch.setattr(s3, "upload_file", lambda *a, **kw: (sent.append(a[3]), real(*a, **kw)))
    (tmp_path / "src" / "config.json").write_bytes(b'{"a": 2}\n')  # same size, other content
    s3.upload_dir(s3_client, bucket, tmp_path / "src", "p")
    assert sent == ["p/config.json"]


def test_prefix_is_a_folder_not_a_string_prefix(s3_client, bucket):
    for key in ("models/a/x", "models/ab/y"):
        s3.put_bytes(s3_client, bucket, key, b"1")
    assert list(s3.list_objects(s3_client, bucket, "models/a")) == ["models/a/x"]


def test_download_refuses_keys_escaping_the_destination(tmp_path):
    for bad in ("../etc/passwd", "/abs", "a/../../b"):
        with pytest.raises(ValueError, match="outside"):
            s3._inside(tmp_path, bad)
    assert s3._inside(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"


# -- errors are one line, with endpoint, bucket and fix ---------------------------------------------


def assert_one_line(err: s3.ArtifactStoreError, *, endpoint: str, bucket: str | None, words: str):
    text = str(err)
    assert "\n" not in text
    assert endpoint in text and "fix:" in text and words in text
    if bucket:
        assert repr(bucket) in text


def test_wrong_secret_key_is_a_clear_error(s3_endpoint, bucket, tmp_path):
    wrong = s3.client(dataclasses.replace(s3_endpoint, secret_key="not-the-secret"))
    for call in (
        lambda: s3.ensure_bucket(wrong, bucket),
        lambda: s3.list_objects(wrong, bucket),
        lambda: s3.upload_dir(wrong, bucket, tmp_path, "x"),
        lambda: s3.put_bytes(wrong, bucket, "k", b"v"),
    ):
        with pytest.raises(s3.ArtifactStoreError) as info:
            call()
        assert_one_line(info.value, endpoint=s3_endpoint.url, bucket=bucket, words="credentials rejected")


def test_unknown_access_key_is_a_clear_error(s3_endpoint, bucket):
    stranger = s3.client(dataclasses.replace(s3_endpoint, access_key="AKNOBODY000000000000"))
    with pytest.raises(s3.ArtifactStoreError) as info:
        s3.list_objects(stranger, bucket)
    assert_one_line(info.value, endpoint=s3_endpoint.url, bucket=bucket, words="InvalidAccessKeyId")


def test_missing_bucket_is_a_clear_error_and_never_created(s3_client, s3_endpoint, tmp_path):
    make_tree(tmp_path)
    for call in (
        lambda: s3.list_objects(s3_client, "no-such-bucket"),
        lambda: s3.upload_dir(s3_client, "no-such-bucket", tmp_path, "x"),
        lambda: s3.put_bytes(s3_client, "no-such-bucket", "k", b"v"),
    ):
        with pytest.raises(s3.ArtifactStoreError) as info:
            call()
        assert_one_line(info.value, endpoint=s3_endpoint.url, bucket="no-such-bucket", words="does not exist")
    assert not s3.bucket_exists(s3_client, "no-such-bucket")  # -s3.autoCreateBucket=false


def test_missing_object_is_a_clear_error(s3_client, bucket, tmp_path):
    with pytest.raises(s3.ArtifactStoreError, match="object not found"):
        s3.download_file(s3_client, bucket, "nothing/here", tmp_path / "x")


def test_unreachable_endpoint_is_a_clear_error(s3_endpoint):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    url = f"http://127.0.0.1:{port}"
    dead = s3.client(dataclasses.replace(s3_endpoint, url=url), connect_timeout=1, attempts=1)
    with pytest.raises(s3.ArtifactStoreError) as info:
        s3.list_objects(dead, "any-bucket")
    assert_one_line(info.value, endpoint=url, bucket="any-bucket", words="cannot reach")


# -- the server itself ------------------------------------------------------------------------------


def test_second_instance_runs_beside_the_first_and_keeps_data_across_restart(s3_server, tmp_path):
    other = SeaweedServer(tmp_path, ports=SeaweedPorts.free("127.0.0.1"), name="seaweedfs-second")
    assert set(other.ports.all()).isdisjoint(s3_server.ports.all())
    try:
        client = s3.client(other.start())
        s3.ensure_bucket(client, "keep")
        s3.put_bytes(client, "keep", "a/b", b"kept")
        keys = other.credentials()
        other.stop()
        assert not other.running
        client = s3.client(other.start())
        assert other.credentials() == keys
        assert s3.get_bytes(client, "keep", "a/b") == b"kept"
        assert s3_server.running
    finally:
        other.stop()
    assert not other.running


def test_credentials_are_private_files(s3_server):
    for path in (s3_server.credentials_path, s3_server.config_path):
        assert path.stat().st_mode & 0o777 == 0o600


def test_busy_ports_are_refused_with_the_fix(s3_server, tmp_path):
    clash = SeaweedServer(tmp_path, ports=s3_server.ports, name="seaweedfs-clash")
    with pytest.raises(SeaweedError, match="already in use.*fix"):
        clash.start(port_grace=0.5)
    assert not clash.running


def listening() -> dict[int, set[str]]:
    """Port -> local addresses of IPv4 TCP listeners, from /proc/net/tcp (state 0A)."""
    found: dict[int, set[str]] = {}
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            addr, port = local.split(":")
            found.setdefault(int(port, 16), set()).add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def test_every_port_listens_on_the_given_address_only(s3_server):
    args = " ".join(s3_server.argv())
    for flag in ("-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-webdav=false", "-admin.ui=false"):
        assert flag in args
    table = listening()
    for port in s3_server.ports.all():
        assert table.get(port) == {"127.0.0.1"}, f"port {port}: {table.get(port)}"


def test_an_address_not_on_this_machine_is_refused_with_the_fix(tmp_path):
    # 192.0.2.0/24 is TEST-NET-1: never assigned, so binding fails before anything starts.
    server = SeaweedServer(tmp_path, address="192.0.2.77", ports=SeaweedPorts.block(28333), name="seaweedfs-nowhere")
    with pytest.raises(SeaweedError, match="not an address of this machine.*bridge"):
        server.start()
    assert not server.running
