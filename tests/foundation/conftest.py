"""Helpers for the foundation tests: run the CLI, and write variations of an example stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from infra.config.loader import STACKS_DIR


@pytest.fixture
def stand_cli():
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return run


@pytest.fixture
def stand_json(stand_cli):
    def run(*args: str) -> tuple[int, dict]:
        result = stand_cli(*args, "--json")
        return result.exit_code, json.loads(result.stdout)

    return run


@pytest.fixture
def variant(tmp_path):
    """Copy an example stack to tmp with a change applied: variant("prod", lambda cfg: ...) -> path."""

    def make(stack: str, change, name: str | None = None) -> Path:
        doc = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())
        change(doc["config"])
        path = tmp_path / f"Pulumi.{name or stack}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return make


def variation_of(base: str, **sections):
    """A Stand parsed from ``base``'s stack file with whole sections replaced (not checked)."""
    import copy

    from infra.config.loader import parse_stand, stack_path

    config = copy.deepcopy(yaml.safe_load(stack_path(base).read_text())["config"])
    for name, value in sections.items():
        config[f"llm-stands:{name}"] = value
    return parse_stand(config, base)
