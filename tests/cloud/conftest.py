"""Program runs under mocks, one per stack (cached: the suite reads each many times)."""

from __future__ import annotations

import copy
import warnings

import pytest
import yaml

from infra.cloud.plan import ProgramRun, run_program
from infra.config.checks import check_stand
from infra.config.loader import STACKS_DIR, parse_stand, stack_name, stack_path
from infra.config.model import Stand

with warnings.catch_warnings():
    # pulumi_openstack warns about its own deprecated aliases when imported: not ours to fix.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_openstack  # noqa: F401

STACKS = sorted(stack_name(p) for p in STACKS_DIR.glob("Pulumi.*.yaml"))
_runs: dict[str, ProgramRun] = {}


def run_of(stack_or_stand: str | Stand) -> ProgramRun:
    key = stack_or_stand if isinstance(stack_or_stand, str) else f"{stack_or_stand.stack}:{hash(stack_or_stand.model_dump_json())}"
    if key not in _runs:
        _runs[key] = run_program(stack_or_stand)
    return _runs[key]


def variation(base: str, stack: str, **sections) -> Stand:
    """An in-memory stand: ``base``'s stack file with whole sections replaced (``target="vk"``)."""
    config = copy.deepcopy(yaml.safe_load(stack_path(base).read_text())["config"])
    for name, value in sections.items():
        config[f"llm-stands:{name}"] = value
    stand = parse_stand(config, stack)
    assert check_stand(stand) == [], "the variation itself must be a valid stand"
    return stand


@pytest.fixture(params=STACKS)
def run(request) -> ProgramRun:
    return run_of(request.param)
