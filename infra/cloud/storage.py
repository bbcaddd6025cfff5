"""The stand's mirror bucket (model weights, wheelhouse, artifacts): private, versioned, own key."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.cloud.providers import provider_for


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
        self.endpoint = args.endpoint
        self.bucket, access, secret = provider_for(args.target).mirror(self, args)
        # Hosts and the backend read these keys: never shown in plain text by `pulumi stack output`.
        self.access_key, self.secret_key = pulumi.Output.secret(access), pulumi.Output.secret(secret)
        self.register_outputs({"bucket": self.bucket, "access_key": self.access_key, "secret_key": self.secret_key})

    def as_output(self) -> dict:
        return {"bucket": self.bucket, "endpoint": self.endpoint,
                "access_key": self.access_key, "secret_key": self.secret_key}
