"""`stand`: the project's driver. Every command takes --json and then prints exactly one JSON object."""

from infra.cli.app import app, main

__all__ = ["app", "main"]
