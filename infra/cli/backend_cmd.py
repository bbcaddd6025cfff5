"""`stand backend init`: the Pulumi state bucket in the stand's cloud, and the login line for it."""

from __future__ import annotations

import os

import typer

from infra.cli.output import JsonOpt, console, emit_json, fail


def init(
    target: str = typer.Option(..., "--target", help="yandex, selectel or vk."),
    bucket: str = typer.Option("llm-stands-pulumi-state", "--bucket", help="State bucket name."),
    endpoint: str = typer.Option(None, "--endpoint", help="S3 endpoint (the cloud's Object Storage if unset)."),
    region: str = typer.Option(None, "--region"),
    as_json: bool = JsonOpt,
) -> None:
    """Create the bucket (idempotent) with the keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY."""
    from infra.backend import init_backend

    if target not in ("yandex", "selectel", "vk"):
        fail(f"--target: {target!r} has no object storage here; use yandex, selectel or vk", as_json=as_json)
    access, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        fail("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must hold the cloud's S3 key (Pulumi reads them too)",
             as_json=as_json)
    line = init_backend(target, bucket, endpoint, access_key=access, secret_key=secret, region=region)
    if as_json:
        emit_json({"ok": True, "bucket": bucket, "login": line})
    else:
        console.print(f"state bucket {bucket} is ready (private, versioned). Log in with:")
        console.print(line, soft_wrap=True)
