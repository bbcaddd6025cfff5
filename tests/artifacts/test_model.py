"""Model folders: manifests, push/pull through real seaweedfs, and the SmolLM2 GGUF conversion."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from infra.artifacts import model, s3


def fake_model(root):
    """A small folder shaped like a HF model (not loadable, enough for manifests and transfers)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text('{"model_type": "llama"}\n')
    (root / "tokenizer.json").write_text('{"version": "1.0"}\n')
    (root / "model.safetensors").write_bytes(os.urandom(200_000))
    (root / "extra").mkdir(exist_ok=True)
    (root / "extra" / "notes.txt").write_text("nested files are covered\n")
    return root


# -- manifest --------------------------------------------------------------------------------------


def test_manifest_is_sorted_sha256sum_format(tmp_path):
    root = fake_model(tmp_path / "m")
    entries = model.write_manifest(root)
    lines = (root / model.MANIFEST).read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == sorted(entries) == [
        "config.json", "extra/notes.txt", "model.safetensors", "tokenizer.json",
    ]  # fmt: skip
    assert all(len(line.split("  ", 1)[0]) == 64 for line in lines)
    if shutil.which("sha256sum"):  # the format is the coreutils one, checkable without us
        subprocess.run(["sha256sum", "--check", "--quiet", model.MANIFEST], cwd=root, check=True)
    assert model.verify_manifest(root) == []


def test_manifest_names_corrupted_missing_and_unlisted_files(tmp_path):
    root = fake_model(tmp_path / "m")
    model.write_manifest(root)
    with open(root / "model.safetensors", "r+b") as fh:  # one flipped byte, same size
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    (root / "extra" / "notes.txt").unlink()
    (root / "stray.bin").write_bytes(b"x")
    assert model.verify_manifest(root) == [
        "missing: extra/notes.txt",
        "corrupted: model.safetensors (its SHA-256 differs from the manifest)",
        "not in manifest: stray.bin",
    ]


def test_manifest_missing_is_a_problem(tmp_path):
    problems = model.verify_manifest(fake_model(tmp_path / "m"))
    assert len(problems) == 1 and problems[0].startswith(f"{model.MANIFEST}: missing")


def test_manifest_refuses_paths_leaving_the_folder():
    with pytest.raises(model.ModelError, match="line 1"):
        model.parse_manifest("0" * 64 + "  ../../etc/passwd\n")
    assert model.parse_manifest("A" * 64 + " *bin/x\n") == {"bin/x": "a" * 64}  # binary-mode marker


# -- push / pull -----------------------------------------------------------------------------------


def test_push_uploads_manifest_last_and_pull_verifies(s3_client, bucket, tmp_path, monkeypatch):
    root = fake_model(tmp_path / "m")
    order = []
    real_upload, real_put = s3.upload_file, model.put_bytes

    def upload_file(client, bucket, path, key, **kw):
        order.append(key)
        real_upload(client, bucket, path, key, **kw)

    def put_bytes(client, bucket, key, data):
        order.append(key)
        real_put(client, bucket, key, data)

    monkeypatch.setattr(s3, "upload_file", upload_file)
    monkeypatch.setattr(model, "put_bytes", put_bytes)
    keys = model.push_model(s3_client, bucket, "models/fake", root)
    assert len(order) == 5 and order[-1] == keys[-1] == f"models/fake/{model.MANIFEST}"
    assert not (root / model.MANIFEST).exists()  # a user's folder is hashed, not written into
    pulled = model.pull_model(s3_client, bucket, "models/fake", tmp_path / "pulled")
    assert model.verify_manifest(pulled) == []
    assert (pulled / "model.safetensors").read_bytes() == (root / "model.safetensors").read_bytes()


def test_half_push_is_not_a_model(s3_client, bucket, tmp_path):
    root = fake_model(tmp_path / "m")
    s3.upload_dir(s3_client, bucket, root, "models/half")  # files arrived, manifest never did
    with pytest.raises(model.ModelError, match="MANIFEST.sha256: missing.*push the model again"):
        model.pull_model(s3_client, bucket, "models/half", tmp_path / "pulled")


def test_pull_names_a_file_corrupted_in_the_bucket(s3_client, bucket, tmp_path):
    root = fake_model(tmp_path / "m")
    model.push_model(s3_client, bucket, "models/bad", root)
    s3.put_bytes(s3_client, bucket, "models/bad/config.json", b'{"model_type": "evil"}\n')
    with pytest.raises(model.ModelError, match=r"corrupted: config\.json"):
        model.pull_model(s3_client, bucket, "models/bad", tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()  # nothing half-verified is left for a server to load


def test_repush_of_another_model_removes_stale_files(s3_client, bucket, tmp_path):
    first = fake_model(tmp_path / "one")
    model.push_model(s3_client, bucket, "models/x", first)
    second = fake_model(tmp_path / "two")
    shutil.rmtree(second / "extra")
    model.push_model(s3_client, bucket, "models/x", second)
    assert "models/x/extra/notes.txt" not in s3.list_objects(s3_client, bucket, "models/x")
    pulled = model.pull_model(s3_client, bucket, "models/x", tmp_path / "pulled")
    assert sorted(p.name for p in pulled.iterdir()) == ["MANIFEST.sha256", "config.json", "model.safetensors", "tokenizer.json"]


def test_push_refuses_a_folder_that_fails_its_own_manifest(s3_client, bucket, tmp_path):
    root = fake_model(tmp_path / "m")
    model.write_manifest(root)
    (root / "config.json").write_text("{}\n")
    with pytest.raises(model.ModelError, match="refusing to push.*corrupted: config.json"):
        model.push_model(s3_client, bucket, "models/refused", root)


# -- sources ---------------------------------------------------------------------------------------


def test_mirror_source_accepts_a_complete_hf_folder_as_is(tmp_path):
    root = fake_model(tmp_path / "m")
    assert model.mirror_source(root) == root


def test_mirror_source_rejects_incomplete_folders_and_hub_ids(tmp_path):
    root = fake_model(tmp_path / "m")
    (root / "tokenizer.json").unlink()
    with pytest.raises(model.ModelError, match="tokenizer"):
        model.mirror_source(root)
    with pytest.raises(model.ModelError, match="huggingface-cli download"):
        model.mirror_source("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_a_broken_gguf_fails_with_the_log(tmp_path):
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + os.urandom(1000))
    with pytest.raises(model.ModelError, match=r"conversion failed \(exit \d+\); log .*convert\.log"):
        model.mirror_source(bogus, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir() and not p.name.endswith(".partial")] == []


# -- SmolLM2 (slow: real conversion with torch in a child process) ----------------------------------

GENERATE = """
import sys
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
m = AutoModelForCausalLM.from_pretrained(sys.argv[1])
ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                              add_generation_prompt=True, return_tensors="pt", return_dict=True)
out = m.generate(**ids, max_new_tokens=12, do_sample=False)
print(tok.decode(out[0][ids["input_ids"].shape[1]:]))
"""


@pytest.mark.slow
def test_prepare_smollm2_converts_once_and_the_result_answers(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    out = model.prepare_smollm2(cache)
    assert model.hf_dir_problems(out, chat_template=True) == []
    assert model.verify_manifest(out) == []
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["dtype"] == "bfloat16"
    assert "quantization_config" not in config  # a plain checkpoint, no GGUF left in it
    assert "<|im_start|>" in (out / "chat_template.jinja").read_text()
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in out.iterdir())  # readable by a service user
    env = {**os.environ, **model.OFFLINE_ENV}
    answer = subprocess.run([sys.executable, "-c", GENERATE, str(out)], capture_output=True, text=True, env=env, check=True)
    assert "Paris" in answer.stdout

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("converted again instead of using the cache")

    monkeypatch.setattr(model, "convert_gguf", no_second_conversion)
    assert model.prepare_smollm2(cache) == out


@pytest.mark.slow
def test_mirror_source_converts_any_gguf_file(tmp_path):
    gguf = model.smollm2_gguf()
    copy = tmp_path / "some-model.gguf"
    shutil.copyfile(gguf, copy)
    out = model.mirror_source(copy, tmp_path / "cache")
    assert out.name.startswith("gguf-some-model-") and model.verify_manifest(out) == []
    assert model.hf_dir_problems(out, chat_template=True) == []
    assert model.mirror_source(copy, tmp_path / "cache") == out  # cached by content hash


@pytest.mark.slow
def test_push_then_pull_the_converted_smollm2(smollm2_dir, s3_client, bucket, tmp_path):
    keys = model.push_model(s3_client, bucket, "models/smollm2-135m-instruct", smollm2_dir)
    assert keys[-1].endswith(model.MANIFEST) and any(k.endswith("model.safetensors") for k in keys)
    pulled = model.pull_model(s3_client, bucket, "models/smollm2-135m-instruct", tmp_path / "pulled")
    assert model.verify_manifest(pulled) == []
    assert (pulled / model.MANIFEST).read_text() == (smollm2_dir / model.MANIFEST).read_text()
    assert model.pull_model(s3_client, bucket, "models/smollm2-135m-instruct", pulled) == pulled  # idempotent
