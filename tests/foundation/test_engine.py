"""The engine's command line and environment: one builder (infra/engine.py) for VMs and Kubernetes."""

from __future__ import annotations

import pytest

from infra import catalog, engine
from infra.config.loader import STACKS_DIR, load_stand, stack_name

from .conftest import variation_of

STACKS = sorted(stack_name(p) for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


@pytest.mark.parametrize("stack", STACKS)
def test_every_model_setting_reaches_the_command_line(stack):
    stand = load_stand(stack)
    args = engine.command(stand, model="/m", host="10.0.0.1")
    e = stand.engine
    assert flag(args, "--model") == "/m" and flag(args, "--host") == "10.0.0.1"
    assert flag(args, "--port") == str(e.port)
    assert flag(args, "--served-model-name") == stand.model.served_name
    assert flag(args, "--tensor-parallel-size") == str(stand.tensor_parallel_size)
    assert flag(args, "--max-model-len") == str(e.max_model_len)
    assert flag(args, "--max-num-seqs") == str(e.max_num_seqs)
    assert flag(args, "--dtype") == engine.dtype(stand)
    assert ("--enforce-eager" in args) is e.enforce_eager
    gpu = stand.hosts.engine.device == "gpu"
    assert (flag(args, "--gpu-memory-utilization") == str(e.gpu_memory_utilization)) is gpu
    assert "--api-key" not in args  # the key lives in the environment file, never on argv


def test_dtype_follows_the_precision_unless_the_engine_sets_one():
    assert engine.dtype(load_stand("dev")) == "bfloat16"  # bf16 weights
    assert engine.dtype(load_stand("prod")) == "auto"  # AWQ carries its own
    assert engine.dtype(load_stand("local")) == "float32"  # engine.dtype: float32 wins over bf16


@pytest.mark.parametrize("family", sorted(catalog.load().families))
def test_each_family_names_its_parsers_or_says_it_has_none(family):
    entry = catalog.load().families[family]
    stand = variation_of("prod", model={**load_stand("prod").model.model_dump(mode="json"), "family": family,
                                        "licence": entry.licence, "licence_accepted": entry.licence})
    args = engine.command(stand, model="/m", host="h")
    assert flag(args, "--tool-call-parser") == entry.tool_call_parser
    assert ("--enable-auto-tool-choice" in args) is bool(entry.tool_call_parser)
    assert flag(args, "--reasoning-parser") == entry.reasoning_parser


def test_qwen3_serves_tool_calls_and_reasoning():
    args = engine.command(load_stand("prod"), model="/m", host="h")
    assert flag(args, "--tool-call-parser") == "hermes" and flag(args, "--reasoning-parser") == "qwen3"


def test_environment_keeps_the_engine_offline_private_and_silent():
    cpu, gpu = engine.environment(load_stand("local")), engine.environment(load_stand("prod"))
    for env in (cpu, gpu):
        assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
        assert env["VLLM_NO_USAGE_STATS"] == env["DO_NOT_TRACK"] == "1"
        assert env["VLLM_HOST_IP"] == "127.0.0.1" and env["GLOO_SOCKET_IFNAME"] == "lo"
    assert cpu["VLLM_CPU_KVCACHE_SPACE"] == "1" and "NCCL_SOCKET_IFNAME" not in cpu
    assert gpu["NCCL_SOCKET_IFNAME"] == "lo" and "VLLM_CPU_KVCACHE_SPACE" not in gpu
    assert "HF_HUB_OFFLINE" not in engine.environment(load_stand("prod"), offline=False)


@pytest.mark.parametrize("arg,flag_name", [
    ("--api_key=secret", "--api-key"), ("--API-KEY", "--api-key"), ("-tp", "--tensor-parallel-size"),
    ("--max-model", "--max-model-len"), ("--port=1", "--port"), ("--swap-space", "--swap-space"), ("8", None),
    ("-1", None),
])
def test_flags_are_normalised_as_vllm_parses_them(arg, flag_name):
    assert engine.normalise_flag(arg) == flag_name
