"""The stand's mirror bucket (model weights, wheelhouse, artifacts): private, versioned, own key."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from infra.cloud import yandex_sdk as yc


@dataclass(frozen=True)
class MirrorArgs:
    target: str
    stack: str
    bucket: str
    endpoint: str
    labels: dict[str, str]


class Mirror(pulumi.ComponentResource):
    bucket: pulumi.Output[str]
    endpoint: str
    access_key: pulumi.Output[str]  # secret
    secret_key: pulumi.Output[str]  # secret

    def __init__(self, name: str, args: MirrorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:cloud:Mirror", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.endpoint = args.endpoint
        if args.target == "yandex":
            access, secret = self._yandex(args, child)
        else:
            access, secret = self._openstack(args, child)
        # Hosts and the backend read these keys: never shown in plain text by `pulumi stack output`.
        self.access_key, self.secret_key = pulumi.Output.secret(access), pulumi.Output.secret(secret)
        self.register_outputs({"bucket": self.bucket, "access_key": self.access_key, "secret_key": self.secret_key})

    def as_output(self) -> dict:
        return {"bucket": self.bucket, "endpoint": self.endpoint,
                "access_key": self.access_key, "secret_key": self.secret_key}

    def _yandex(self, args: MirrorArgs, child):
        account = yc.IamServiceAccount(f"{args.stack}-mirror", name=f"{args.stack}-mirror",
                                       description=f"reads and writes the {args.bucket} bucket only", opts=child)
        key = yc.IamServiceAccountStaticAccessKey(f"{args.stack}-mirror-key", service_account_id=account.id,
                                                  description=f"S3 key for {args.bucket}", opts=child)
        # A bucket grant, not a folder role: the key opens this bucket and no other.
        bucket = yc.StorageBucket(
            args.bucket, bucket=args.bucket,
            grants=[{"type": "CanonicalUser", "id": account.id, "permissions": ["READ", "WRITE"]}],
            anonymous_access_flags={"read": False, "list": False, "config_read": False},
            versioning={"enabled": True}, tags=args.labels, opts=child)
        self.bucket = bucket.bucket
        return key.access_key, key.secret_key

    def _openstack(self, args: MirrorArgs, child):
        # No container_read/write ACL: only the project's credentials reach it.
        container = openstack.objectstorage.Container(
            args.bucket, name=args.bucket, versioning=True, metadata=args.labels, opts=child)
        # EC2-style credentials are the S3 keys of Selectel's and VK's object storage.
        creds = openstack.identity.Ec2CredentialV3(f"{args.stack}-mirror-key", opts=child)
        self.bucket = container.name
        return creds.access, creds.secret
