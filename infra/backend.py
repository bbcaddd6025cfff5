"""The Pulumi state backend: a versioned, private S3 bucket in the stand's cloud.

    line = init_backend("yandex", "acme-pulumi-state", access_key=AK, secret_key=SK)
    print(line)   # pulumi login 's3://acme-pulumi-state?endpoint=storage.yandexcloud.net&region=...'

Pulumi itself reads the keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY at login and on every
run; this module never stores them. The S3 client and bucket helpers are the artifact store's
(infra.artifacts.s3), so both talk to the clouds' S3 dialects the same way.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from infra import catalog
from infra.artifacts.s3 import ArtifactStoreError, S3Endpoint, bucket_versioned, client, ensure_bucket
from infra.errors import StandError

# Where each cloud hands out S3 keys: the fix named in a credentials error.
KEY_HINTS = {
    "yandex": "create a static access key: yc iam access-key create --service-account-name NAME "
              "(the account needs the storage.editor role)",
    "selectel": "create an S3 key for a service user in the control panel (Access -> Service users -> S3 keys)",
    "vk": "create an Object Storage account key in the VK Cloud panel (Object Storage -> Accounts)",
}
_BAD_KEY = {"InvalidAccessKeyId", "InvalidClientTokenId"}
_BAD_SECRET = {"SignatureDoesNotMatch", "InvalidSignature"}


class BackendError(StandError):
    """One line: what went wrong and what to do about it."""


def init_backend(target: str, bucket: str, endpoint: str | None = None, *, access_key: str, secret_key: str,
                 region: str | None = None) -> str:
    """Create (or adopt) the state bucket and return the `pulumi login` line for it.

    ``endpoint``/``region`` default to the cloud's Object Storage from infra/catalogs/offers.yaml.
    Idempotent: a bucket that already exists under these credentials is reused, and versioning
    and privacy are (re)applied. Raises BackendError (one line, with the fix) on any failure.
    """
    endpoint, region = _endpoint_for(target, endpoint, region)
    s3 = client(S3Endpoint(endpoint, access_key, secret_key, region), connect_timeout=10, read_timeout=30, attempts=2)
    hint = KEY_HINTS.get(target, "check the access key and secret key")
    try:
        _check_access(s3, bucket, endpoint)
        ensure_bucket(s3, bucket, versioned=True)  # creates if missing, private ACL / public-access block
        # Versioning is what lets a broken state file be rolled back: without it, refuse.
        if not bucket_versioned(s3, bucket):
            raise BackendError(f"bucket {bucket} at {endpoint}: versioning did not turn on; this storage "
                               "cannot keep state history: use another endpoint")
    except (EndpointConnectionError, ConnectTimeoutError):
        raise BackendError(f"cannot reach the S3 endpoint {endpoint}: check --endpoint and your network "
                           f"(the {target} default is {_default_endpoint(target)})") from None
    except ClientError as exc:
        raise BackendError(_explain(exc, bucket, endpoint, hint)) from None
    except ArtifactStoreError as exc:
        raise BackendError(f"{exc}; {hint}" if exc.problem.startswith("credentials") else str(exc)) from None
    except BotoCoreError as exc:
        raise BackendError(f"S3 request to {endpoint} failed ({exc}): check --endpoint and the network") from None
    return login_line(bucket, endpoint, region)


def login_line(bucket: str, endpoint: str, region: str) -> str:
    """`pulumi login` for an S3-compatible bucket; quoted, since the URL contains '&'."""
    parts = urlsplit(endpoint)
    params = {"endpoint": parts.netloc, "region": region, "s3ForcePathStyle": "true"}
    if parts.scheme == "http":
        params["disableSSL"] = "true"  # a plain-HTTP endpoint (on-prem or a test server)
    return f"pulumi login 's3://{bucket}?{urlencode(params, safe=':')}'"


def _check_access(s3, bucket: str, endpoint: str) -> None:
    """Prove the keys (ListBuckets) before looking at the bucket: a wrong key must not read as
    "bucket taken", and a foreign bucket (403 on HEAD with good keys) must not read as a wrong key."""
    s3.list_buckets()
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 403:
            raise BackendError(f"bucket {bucket} at {endpoint} exists and this key may not use it (bucket names "
                               "are global: it is likely another account's): choose another --bucket, "
                               "or use a key of the bucket's owner") from None
        if status != 404:
            raise


def _default_endpoint(target: str) -> str:
    clouds = catalog.load().clouds
    return clouds[target].storage_endpoint if target in clouds else "none"


def _endpoint_for(target: str, endpoint: str | None, region: str | None) -> tuple[str, str]:
    clouds = catalog.load().clouds
    if target not in clouds and (endpoint is None or region is None):
        raise BackendError(f"target {target!r} has no object storage in the catalog: use one of "
                           f"{', '.join(clouds)}, or give both --endpoint and --region")
    endpoint = endpoint or clouds[target].storage_endpoint
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendError(f"endpoint {endpoint!r} is not a URL: write it as https://HOST[:PORT]")
    return endpoint.rstrip("/"), region or clouds[target].storage_region


def _explain(exc: ClientError, bucket: str, endpoint: str, hint: str) -> str:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = exc.response.get("Error", {}).get("Message", "") or str(exc)
    if code in _BAD_KEY:
        return f"the access key is not known to {endpoint}: {hint}"
    if code in _BAD_SECRET:
        return f"the secret key does not match the access key at {endpoint}: {hint}"
    if code in ("AccessDenied", "Forbidden", "403"):
        return (f"bucket {bucket} at {endpoint}: access denied ({message}): the key's account needs the right to "
                f"create and configure buckets; {hint}")
    if code == "InvalidBucketName":
        return f"bucket {bucket}: invalid name: use 3-63 lowercase letters, digits, '-' and '.'"
    return f"bucket {bucket} at {endpoint}: {code or 'error'}: {message}"
