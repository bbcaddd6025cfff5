"""The model_weights role's sync script (roles/model_weights/files/llm_stands_weights.py) against a
real S3 server (seaweedfs on 127.0.0.1, signatures checked). No hosts needed: fast.

The same script runs on the hosts in tests/roles/tests/stand/test_local_stand.py; here its edge cases are covered:
resume, reuse between versions, corrupted/missing files named, atomic activation, pruning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "model_weights" / "files" / "llm_stands_weights.py"
BUCKET = "weights"


def load_script():
    spec = importlib.util.spec_from_file_location("llm_stands_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


weights = load_script()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    from infra.artifacts.s3 import client, ensure_bucket
    from infra.local.seaweed import SeaweedError, SeaweedPorts, SeaweedServer, weed_binary

    try:
        weed_binary()
    except SeaweedError as exc:
        pytest.skip(str(exc))
    state = tmp_path_factory.mktemp("seaweed")
    server = SeaweedServer(state, address="127.0.0.1", ports=SeaweedPorts.free("127.0.0.1"), name="weights-test")
    endpoint = server.start()
    try:
        s3 = client(endpoint)
        ensure_bucket(s3, BUCKET)
        creds = state / "credentials.json"
        creds.write_text(json.dumps({"endpoint": endpoint.url, "access_key": endpoint.access_key,
                                     "secret_key": endpoint.secret_key, "region": endpoint.region}))
        yield s3, creds
    finally:
        server.stop()


class Mirror:
    """A model under one prefix: files + MANIFEST.sha256 (uploaded last)."""

    def __init__(self, s3, prefix: str):
        self.s3, self.prefix = s3, prefix
        self.files: dict[str, bytes] = {}

    def push(self, files: dict[str, bytes], manifest_override: dict[str, bytes] | None = None) -> str:
        """Upload files; the manifest lists the sha256 of manifest_override[rel] where given."""
        self.files = dict(files)
        for rel, data in files.items():
            self.s3.put_object(Bucket=BUCKET, Key=f"{self.prefix}/{rel}", Body=data)
        listed = {**files, **(manifest_override or {})}
        manifest = "".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n" for rel, d in sorted(listed.items()))
        self.s3.put_object(Bucket=BUCKET, Key=f"{self.prefix}/MANIFEST.sha256", Body=manifest.encode())
        return hashlib.sha256(manifest.encode()).hexdigest()

    @property
    def source(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}"


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = weights.main(list(argv))
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def sync(capsys, mirror: Mirror, model_dir: Path, creds: Path) -> tuple[int, dict]:
    return run(capsys, "sync-s3", "--source", mirror.source, "--model-dir", str(model_dir),
               "--credentials-file", str(creds))


def model_files(big: bytes = b"") -> dict[str, bytes]:
    return {
        "config.json": b'{"model_type": "llama"}\n',
        "model.safetensors": big or os.urandom(3 * 1024 * 1024 + 17),
        "tokenizer/tokenizer.json": b'{"version": "1.0"}\n',
    }


def test_sync_verify_activate_and_rerun(s3_server, tmp_path, capsys):
    s3, creds = s3_server
    mirror = Mirror(s3, "m1")
    version = mirror.push(model_files())
    model_dir = tmp_path / "m"

    code, out = sync(capsys, mirror, model_dir, creds)
    assert code == 0, out
    assert out["version"] == version and out["changed"]
    assert sorted(out["downloaded"]) == sorted(mirror.files)
    vdir = model_dir / "versions" / version
    for rel, data in mirror.files.items():
        assert (vdir / rel).read_bytes() == data
        assert (vdir / rel).stat().st_mode & 0o777 == 0o644
    assert not list(vdir.rglob("*.part"))

    code, out = run(capsys, "activate", "--model-dir", str(model_dir), "--version", version)
    assert code == 0 and out["changed"] and out["previous"] is None
    assert os.readlink(model_dir / "current") == f"versions/{version}"

    # A re-run downloads nothing, still checks every file, and changes nothing.
    code, out = sync(capsys, mirror, model_dir, creds)
    assert (code, out["changed"], out["downloaded"]) == (0, False, [])
    code, out = run(capsys, "activate", "--model-dir", str(model_dir), "--version", version)
    assert (code, out["changed"]) == (0, False)
    code, out = run(capsys, "verify", "--model-dir", str(model_dir), "--version", version)
    assert code == 0


def test_partial_download_is_resumed(s3_server, tmp_path, capsys):
    s3, creds = s3_server
    mirror = Mirror(s3, "m2")
    version = mirror.push(model_files())
    model_dir = tmp_path / "m"
    vdir = model_dir / "versions" / version
    vdir.mkdir(parents=True)
    big = mirror.files["model.safetensors"]
    (vdir / "model.safetensors.part").write_bytes(big[: len(big) // 2])  # an interrupted download

    code, out = sync(capsys, mirror, model_dir, creds)
    assert code == 0, out
    assert (vdir / "model.safetensors").read_bytes() == big
    assert not (vdir / "model.safetensors.part").exists()


def test_corrupted_mirror_file_is_named_and_nothing_switches(s3_server, tmp_path, capsys):
    s3, creds = s3_server
    mirror = Mirror(s3, "m3")
    good = mirror.push(model_files())
    model_dir = tmp_path / "m"
    assert sync(capsys, mirror, model_dir, creds)[0] == 0
    assert run(capsys, "activate", "--model-dir", str(model_dir), "--version", good)[0] == 0

    files = model_files(big=mirror.files["model.safetensors"])
    intended = b'{"model_type": "llama", "v": 2}\n'
    files["config.json"] = b'{"model_type": "llama", "v": 3}\n'  # not what the manifest says
    bad = mirror.push(files, manifest_override={"config.json": intended})

    code, out = sync(capsys, mirror, model_dir, creds)
    assert code == 2
    assert out["failed_files"] == [{"path": "config.json", "reason": "sha256 mismatch after download"}]
    assert "config.json" in out["msg"]
    assert not (model_dir / "versions" / bad / "MANIFEST.sha256").exists()
    # An unverified version cannot be activated; current still points at the good one.
    code, out = run(capsys, "activate", "--model-dir", str(model_dir), "--version", bad)
    assert code == 1
    assert os.readlink(model_dir / "current") == f"versions/{good}"


def test_missing_mirror_file_is_named(s3_server, tmp_path, capsys):
    s3, creds = s3_server
    mirror = Mirror(s3, "m4")
    mirror.push(model_files(), manifest_override={"extra/merges.txt": b"a b\n"})
    code, out = sync(capsys, mirror, tmp_path / "m", creds)
    assert code == 2
    assert out["failed_files"] == [{"path": "extra/merges.txt", "reason": "missing on the mirror"}]


def test_local_corruption_is_repaired(s3_server, tmp_path, capsys):
    s3, creds = s3_server
    mirror = Mirror(s3, "m5")
    version = mirror.push(model_files())
    model_dir = tmp_path / "m"
    assert sync(capsys, mirror, model_dir, creds)[0] == 0
    target = model_dir / "versions" / version / "config.json"
    target.write_bytes(b"garbage")
    (model_dir / "versions" / version / "tokenizer" / "tokenizer.json").unlink()

    code, out = sync(capsys, mirror, model_dir, creds)
    assert code == 0 and out["changed"]
    assert sorted(out["downloaded"]) == ["config.json", "tokenizer/tokenizer.json"]
    assert target.read_bytes() == mirror.files["config.json"]


def test_verify_names_bad_local_files(s3_server, tmp_path, capsys):
    s3, creds = s3_server
    mirror = Mirror(s3, "m6")
    version = mirror.push(model_files())
    model_dir = tmp_path / "m"
    assert sync(capsys, mirror, model_dir, creds)[0] == 0
    vdir = model_dir / "versions" / version
    (vdir / "config.json").write_bytes(b"{}")
    (vdir / "tokenizer" / "tokenizer.json").unlink()
    code, out = run(capsys, "verify", "--model-dir", str(model_dir), "--version", version)
    assert code == 2
    assert {(f["path"], f["reason"]) for f in out["failed_files"]} == {
        ("config.json", "sha256 mismatch"), ("tokenizer/tokenizer.json", "missing")}


def test_new_version_reuses_unchanged_files_and_prune_keeps_rollback(s3_server, tmp_path, capsys):
    s3, creds = s3_server
    mirror = Mirror(s3, "m7")
    model_dir = tmp_path / "m"
    v1 = mirror.push(model_files())
    assert sync(capsys, mirror, model_dir, creds)[0] == 0
    assert run(capsys, "activate", "--model-dir", str(model_dir), "--version", v1)[0] == 0

    files = dict(mirror.files, **{"config.json": b'{"model_type": "llama", "v": 2}\n'})
    v2 = mirror.push(files)
    code, out = sync(capsys, mirror, model_dir, creds)
    assert code == 0
    assert out["downloaded"] == ["config.json"]
    assert sorted(out["reused"]) == ["model.safetensors", "tokenizer/tokenizer.json"]
    assert (model_dir / "versions" / v2 / "model.safetensors").stat().st_ino == (
        model_dir / "versions" / v1 / "model.safetensors").stat().st_ino
    code, out = run(capsys, "activate", "--model-dir", str(model_dir), "--version", v2)
    assert out == {**out, "changed": True, "previous": f"versions/{v1}", "current": f"versions/{v2}"}

    (model_dir / "versions" / "deadbeef").mkdir()  # an incomplete download of some other version
    v3 = mirror.push(dict(files, **{"config.json": b'{"model_type": "llama", "v": 3}\n'}))
    assert sync(capsys, mirror, model_dir, creds)[0] == 0
    assert run(capsys, "activate", "--model-dir", str(model_dir), "--version", v3)[0] == 0
    code, out = run(capsys, "prune", "--model-dir", str(model_dir), "--version", v3, "--keep", "2")
    assert code == 0 and sorted(out["removed"]) == sorted([v1, "deadbeef"])
    assert sorted(p.name for p in (model_dir / "versions").iterdir()) == sorted([v2, v3])
    code, out = run(capsys, "prune", "--model-dir", str(model_dir), "--version", v3, "--keep", "2")
    assert (code, out["changed"]) == (0, False)


@pytest.mark.parametrize("line", [
    "0" * 64 + "  ../etc/passwd",
    "0" * 64 + "  /etc/passwd",
    "0" * 64 + "  MANIFEST.sha256",
    "nothex  config.json",
])
def test_unsafe_or_malformed_manifest_rejected(line):
    with pytest.raises(weights.Failure):
        weights.parse_manifest(line + "\n")
