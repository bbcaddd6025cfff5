"""S3-compatible storage for the artifact store: one client factory, bucket setup, directory sync.

Works against any S3-compatible endpoint (the local seaweedfs, Yandex Object Storage, Selectel,
VK Cloud, AWS). Every failure surfaces as ``ArtifactStoreError``: one line naming the endpoint,
the bucket, what went wrong and the fix, instead of a botocore traceback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from infra.errors import StandError

MiB = 1024 * 1024
# 64 MiB parts: a 10 GB safetensors shard is 160 parts, far below S3's 10,000-part limit, and a
# failed part costs little to resend.
TRANSFER = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=4)
SHA256_META = "sha256"  # object metadata: lets a re-run skip files that are already there

_CREDENTIAL_CODES = {
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
}
_NO_BUCKET_CODES = {"NoSuchBucket", "404", "NotFound"}
# What S3-compatible stores answer for bucket settings they do not have (seaweedfs has no
# public-access block; AWS buckets with ACLs disabled refuse ACL calls).
_UNSUPPORTED_CODES = {"NotImplemented", "AccessControlListNotSupported", "MethodNotAllowed", "XNotImplemented"}


@dataclass(frozen=True)
class S3Endpoint:
    url: str  # e.g. http://10.213.0.1:8333
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"


class ArtifactStoreError(StandError):
    """An S3 call failed; ``str()`` is one line: endpoint, bucket, problem, fix."""

    def __init__(self, problem: str, *, endpoint: str, bucket: str | None = None, fix: str):
        problem = " ".join(problem.split())  # server messages may carry newlines: keep one line
        self.problem = problem
        self.endpoint = endpoint
        self.bucket = bucket
        where = f"S3 {endpoint}" + (f" bucket {bucket!r}" if bucket else "")
        super().__init__(f"{where}: {problem}", fix)


# -- client --------------------------------------------------------------------------------------


def client(endpoint: S3Endpoint, *, connect_timeout: float = 5.0, read_timeout: float = 60.0, attempts: int = 3):
    """A boto3 S3 client for ``endpoint`` with path-style addressing."""
    config = Config(
        region_name=endpoint.region,
        signature_version="s3v4",
        # Bucket in the path, not the host name: private endpoints have no per-bucket DNS.
        s3={"addressing_style": "path"},
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # boto3 >= 1.36 sends CRC trailers by default; several S3-compatible stores reject them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # Our own session: explicit keys, never a profile or the default session shared across threads.
    session = boto3.session.Session(
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
    )
    return session.client("s3", endpoint_url=endpoint.url, config=config)


# -- errors --------------------------------------------------------------------------------------


def _client_error(exc: BaseException) -> ClientError | None:
    """The ClientError behind ``exc`` (boto3 wraps upload failures in S3UploadFailedError)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def explain(exc: BaseException, *, endpoint: str, bucket: str | None) -> ArtifactStoreError:
    """Turn a boto3/botocore exception into our one-line error."""

    def err(problem: str, fix: str) -> ArtifactStoreError:
        return ArtifactStoreError(problem, endpoint=endpoint, bucket=bucket, fix=fix)

    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError)):
        return err(
            f"cannot reach the endpoint ({type(exc).__name__})",
            "start the stand's S3 server (or check its address and port in the stack config)",
        )
    if isinstance(exc, NoCredentialsError):
        return err("no access key / secret key given", "set the stand's S3 credentials")
    cause = _client_error(exc)
    if cause is None:
        return err(f"{type(exc).__name__}: {exc}", "see the message; retry once the endpoint is healthy")
    code = _code(cause)
    status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = getattr(cause, "operation_name", "")
    if code in _CREDENTIAL_CODES or (status == 403 and operation == "HeadBucket"):
        return err(
            f"credentials rejected ({code or status})",
            "use the access key and secret key the S3 server was configured with (wrong or stale keys)",
        )
    if code in ("404", "NotFound") and operation == "HeadObject":
        return err("object not found", "push the artifact first, or correct the key/prefix")
    if code in _NO_BUCKET_CODES:
        return err(
            "bucket does not exist",
            "create it first (ensure_bucket / `stand up` does) or correct the bucket name",
        )
    if code == "AccessDenied" or status == 403:
        return err("access denied", "give this access key read/write permission on the bucket")
    if code == "NoSuchKey":
        return err("object not found", "push the artifact first, or correct the key/prefix")
    message = cause.response.get("Error", {}).get("Message", "")
    return err(f"{operation} failed: {code} {message}".strip(), "see the server's log for the cause")


def endpoint_of(s3) -> str:
    return s3.meta.endpoint_url


@contextmanager
def translated(s3, bucket: str | None) -> Iterator[None]:
    """Re-raise any boto3/botocore failure inside the block as ArtifactStoreError."""
    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise explain(exc, endpoint=endpoint_of(s3), bucket=bucket) from exc


# -- buckets -------------------------------------------------------------------------------------


def bucket_exists(s3, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if _code(exc) in _NO_BUCKET_CODES:
            return False
        raise explain(exc, endpoint=endpoint_of(s3), bucket=bucket) from exc
    except BotoCoreError as exc:
        raise explain(exc, endpoint=endpoint_of(s3), bucket=bucket) from exc


def ensure_bucket(s3, bucket: str, *, versioned: bool = False) -> bool:
    """Create ``bucket`` if missing, keep it private, optionally versioned. True if it was created."""
    created = False
    if not bucket_exists(s3, bucket):
        _create_bucket(s3, bucket)
        created = True
    with translated(s3, bucket):
        _make_private(s3, bucket)
        if versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return created


def _create_bucket(s3, bucket: str) -> None:
    region = s3.meta.region_name
    # AWS wants the region spelled out everywhere but us-east-1; S3-compatible stores accept it.
    extra = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=bucket, **extra)
    except ClientError as exc:
        # A concurrent creator won the race: fine if the bucket is now ours to use.
        if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists") and bucket_exists(s3, bucket):
            return
        if _code(exc) == "BucketAlreadyExists":
            raise ArtifactStoreError(
                "bucket name is taken by another account",
                endpoint=endpoint_of(s3),
                bucket=bucket,
                fix="bucket names are global on this endpoint: choose another name",
            ) from exc
        raise explain(exc, endpoint=endpoint_of(s3), bucket=bucket) from exc
    except BotoCoreError as exc:
        raise explain(exc, endpoint=endpoint_of(s3), bucket=bucket) from exc


def _make_private(s3, bucket: str) -> None:
    """Buckets are private by default; this also undoes a public setting made by hand."""
    block = {key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
    calls = (
        lambda: s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block),
        lambda: s3.put_bucket_acl(Bucket=bucket, ACL="private"),
    )
    for call in calls:
        try:
            call()
        except ClientError as exc:
            if _code(exc) not in _UNSUPPORTED_CODES:
                raise


def bucket_versioned(s3, bucket: str) -> bool:
    with translated(s3, bucket):
        return s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


# -- objects -------------------------------------------------------------------------------------


def key_for(prefix: str, relative: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{relative}" if prefix else relative


def _list_prefix(prefix: str) -> str:
    # "models/a" must not match "models/ab/...": list the folder, not a string prefix.
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def list_objects(s3, bucket: str, prefix: str = "") -> dict[str, int]:
    """Key -> size of every object under ``prefix`` (a folder), sorted by key."""
    found: dict[str, int] = {}
    with translated(s3, bucket):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=_list_prefix(prefix))
        for page in pages:
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj["Size"]
    return dict(sorted(found.items()))


def local_files(root: Path) -> list[str]:
    """Relative POSIX paths of the files under ``root``, sorted (symlinks to files included)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def _remote_sha256(s3, bucket: str, key: str) -> str | None:
    return s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get(SHA256_META)


def upload_file(s3, bucket: str, path: Path, key: str, *, sha256: str | None = None) -> None:
    """Upload one file (multipart above 64 MiB), recording its SHA-256 in the object metadata."""
    digest = sha256 or file_sha256(path)
    with translated(s3, bucket):
        s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {SHA256_META: digest}}, Config=TRANSFER)


def upload_dir(
    s3,
    bucket: str,
    local_dir: Path,
    prefix: str = "",
    *,
    files: list[str] | None = None,
    digests: dict[str, str] | None = None,
    skip_unchanged: bool = True,
) -> list[str]:
    """Upload files under ``local_dir`` to ``prefix/<relative path>``; returns the keys.

    files: relative paths to upload (default: every file), in this order.
    digests: known SHA-256 per relative path (saves hashing twice).
    skip_unchanged: leave objects whose size and recorded SHA-256 already match (idempotent re-runs).
    """
    root = Path(local_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory; nothing to upload")
    if not bucket_exists(s3, bucket):
        raise explain(_no_bucket(bucket), endpoint=endpoint_of(s3), bucket=bucket)
    remote = list_objects(s3, bucket, prefix) if skip_unchanged else {}
    keys = []
    for rel in local_files(root) if files is None else files:
        path, key = root / rel, key_for(prefix, rel)
        digest = (digests or {}).get(rel) or file_sha256(path)
        if not (remote.get(key) == path.stat().st_size and _same_digest(s3, bucket, key, digest)):
            upload_file(s3, bucket, path, key, sha256=digest)
        keys.append(key)
    return keys


def _same_digest(s3, bucket: str, key: str, digest: str) -> bool:
    with translated(s3, bucket):
        return _remote_sha256(s3, bucket, key) == digest


def _no_bucket(bucket: str) -> ClientError:
    return ClientError({"Error": {"Code": "NoSuchBucket", "Message": bucket}}, "HeadBucket")


def put_bytes(s3, bucket: str, key: str, data: bytes) -> None:
    with translated(s3, bucket):
        s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={SHA256_META: hashlib.sha256(data).hexdigest()})


def get_bytes(s3, bucket: str, key: str) -> bytes:
    with translated(s3, bucket):
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def delete_keys(s3, bucket: str, keys: list[str]) -> None:
    with translated(s3, bucket):
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def _inside(dest: Path, relative: str) -> Path:
    """dest/relative, refusing keys that would escape dest ("../", absolute paths)."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts:
        raise ValueError(f"refusing object key part {relative!r}: it would be written outside {dest}")
    return dest.joinpath(*parts)


def download_file(s3, bucket: str, key: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with translated(s3, bucket):
        s3.download_file(bucket, key, str(target), Config=TRANSFER)  # writes a temp file, then renames
    return target


def download_prefix(s3, bucket: str, prefix: str, dest: Path, *, only: set[str] | None = None) -> list[Path]:
    """Download every object under ``prefix`` into ``dest`` keeping relative paths; returns the files.

    only: relative paths to fetch (others under the prefix are ignored).
    """
    dest = Path(dest)
    base = _list_prefix(prefix)
    files = []
    for key in list_objects(s3, bucket, prefix):
        rel = key[len(base) :]
        if not rel or rel.endswith("/") or (only is not None and rel not in only):
            continue  # folder markers some tools create
        files.append(download_file(s3, bucket, key, _inside(dest, rel)))
    return files
