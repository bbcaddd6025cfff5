#!/usr/bin/env python3
"""Fetch, verify and activate model weights on a stand host (shipped by the model_weights role).

Layout under MODEL_DIR (= <model_weights_root>/<model_weights_name>):

    versions/<version-id>/...          one directory per version, files read-only to services
    versions/<version-id>/MANIFEST.sha256
    current -> versions/<version-id>   switched atomically, only after verification

Commands (each prints one JSON object on stdout; exit 0 = ok, 2 = verification failed,
1 = any other error):

    sync-s3   download the version named by s3://bucket/prefix/MANIFEST.sha256 (version id =
              sha256 of the manifest); files whose sha256 already matches are skipped, partial
              downloads (*.part) are resumed; then EVERY file of the version is verified.
    sync-hf   same for hf://org/name@revision through huggingface_hub (version id = commit sha).
    verify    re-hash every file of one version against its manifest.
    activate  point `current` at a version (new symlink + rename); no-op if already there.
    prune     delete old versions, keeping `current`, the given version and the newest N.

Only the standard library is needed, plus boto3 for sync-s3 and huggingface_hub for sync-hf.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path, PurePosixPath

MANIFEST = "MANIFEST.sha256"
CHUNK = 4 * 1024 * 1024
FILE_MODE = 0o644
DIR_MODE = 0o755
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


class VerificationError(Exception):
    """One or more files are missing or do not match the manifest."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        names = ", ".join(f"{p['path']} ({p['reason']})" for p in problems)
        super().__init__(f"{len(problems)} file(s) failed verification: {names}")


class Failure(Exception):
    """Any other error, with a message for the operator."""


# --- manifest ---------------------------------------------------------------------------------


def parse_manifest(text: str) -> list[tuple[str, str]]:
    """sha256sum format: '<64 hex>  <relative path>' per line. Rejects unsafe paths."""
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise Failure(f"manifest line {number} is not '<sha256>  <path>': {line[:120]!r}")
        digest, rel = match.group(1).lower(), match.group(2)
        path = PurePosixPath(rel)
        if path.is_absolute() or ".." in path.parts or rel.startswith("./") or rel == MANIFEST:
            raise Failure(f"manifest line {number} has an unsafe path: {rel!r}")
        if rel in seen:
            raise Failure(f"manifest lists {rel!r} twice")
        seen.add(rel)
        entries.append((digest, rel))
    if not entries:
        raise Failure("manifest lists no files")
    return entries


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(vdir: Path, digest: str, rel: str) -> str | None:
    """None when the file matches, else the reason ('missing' or 'sha256 mismatch')."""
    target = vdir / rel
    if not target.is_file():
        return "missing"
    if sha256_file(target) != digest:
        return "sha256 mismatch"
    return None


def verify_dir(vdir: Path, entries: list[tuple[str, str]]) -> None:
    problems = []
    for digest, rel in entries:
        reason = check_file(vdir, digest, rel)
        if reason:
            problems.append({"path": rel, "reason": reason})
    if problems:
        raise VerificationError(problems)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def make_dirs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def ensure_parents(vdir: Path, rel: str) -> Path:
    target = vdir / rel
    parent = target.parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir()
        os.chmod(directory, DIR_MODE)
    return target


def finish_file(part: Path, target: Path, digest: str, rel: str) -> None:
    actual = sha256_file(part)
    if actual != digest:
        part.unlink()
        raise VerificationError([{"path": rel, "reason": "sha256 mismatch after download"}])
    os.chmod(part, FILE_MODE)
    os.replace(part, target)


def reuse_from_other_version(model_dir: Path, vdir: Path, digest: str, rel: str, target: Path) -> bool:
    """Hard-link an identical file (same sha256, verified now) from another local version.

    Versions often share most files (a new tokenizer, same weights): no download, no extra
    space. Files are read-only to everyone but root, so sharing an inode is safe.
    """
    for other in sorted((model_dir / "versions").iterdir()):
        if other == vdir or not (other / MANIFEST).is_file():
            continue
        try:
            listed = {r: d for d, r in parse_manifest((other / MANIFEST).read_text("utf-8"))}
        except Failure:
            continue
        for other_rel, other_digest in listed.items():
            if other_digest != digest:
                continue
            source = other / other_rel
            if source.is_file() and sha256_file(source) == digest:
                tmp = target.with_name(f".{target.name}.link-{os.getpid()}")
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                os.link(source, tmp)
                os.replace(tmp, target)
                return True
    return False


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@contextlib.contextmanager
def locked(model_dir: Path):
    make_dirs(model_dir)
    with open(model_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- S3 ---------------------------------------------------------------------------------------


def s3_client(credentials_file: str | None):
    import boto3  # only this command needs it
    from botocore.config import Config

    creds = {}
    if credentials_file:
        with open(credentials_file, encoding="utf-8") as handle:
            creds = json.load(handle)
    return boto3.client(
        "s3",
        endpoint_url=creds.get("endpoint") or None,
        aws_access_key_id=creds.get("access_key") or None,
        aws_secret_access_key=creds.get("secret_key") or None,
        region_name=creds.get("region") or "us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        ),
    )


def split_s3(source: str) -> tuple[str, str]:
    if not source.startswith("s3://"):
        raise Failure(f"not an s3:// source: {source!r}")
    bucket, _, prefix = source[5:].partition("/")
    if not bucket:
        raise Failure(f"no bucket in {source!r}")
    return bucket, prefix.strip("/")


def s3_download(client, bucket: str, key: str, part: Path, size: int | None) -> None:
    """Download key into part, resuming from part's current size (HTTP Range)."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and offset == size:
        return
    kwargs = {"Bucket": bucket, "Key": key}
    if offset:
        kwargs["Range"] = f"bytes={offset}-"
    body = client.get_object(**kwargs)["Body"]
    with part.open("ab" if offset else "wb") as handle:
        for chunk in body.iter_chunks(CHUNK):
            handle.write(chunk)


def cmd_sync_s3(args) -> dict:
    from botocore.exceptions import ClientError

    bucket, prefix = split_s3(args.source)
    key_of = (lambda rel: f"{prefix}/{rel}") if prefix else (lambda rel: rel)
    client = s3_client(args.credentials_file)
    try:
        manifest = client.get_object(Bucket=bucket, Key=key_of(MANIFEST))["Body"].read()
    except ClientError as exc:
        raise Failure(f"cannot read s3://{bucket}/{key_of(MANIFEST)}: {exc}") from exc
    version = hashlib.sha256(manifest).hexdigest()
    entries = parse_manifest(manifest.decode("utf-8"))

    model_dir = Path(args.model_dir)
    with locked(model_dir):
        vdir = model_dir / "versions" / version
        make_dirs(vdir.parent)
        make_dirs(vdir)
        todo = [(d, rel) for d, rel in entries if check_file(vdir, d, rel) is not None]

        sizes: dict[str, int] = {}
        if todo:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
                for obj in page.get("Contents", []):
                    sizes[obj["Key"]] = obj["Size"]
            problems = [
                {"path": rel, "reason": "missing on the mirror"}
                for _, rel in todo
                if key_of(rel) not in sizes
            ]
            if problems:
                raise VerificationError(problems)
            need = sum(sizes[key_of(rel)] for _, rel in todo)
            free = free_bytes(vdir) - args.min_free_bytes
            if need > free:
                raise Failure(
                    f"not enough disk space in {vdir}: need {need} bytes, "
                    f"{free} available above the reserve of {args.min_free_bytes}"
                )

        downloaded, reused, problems = [], [], []
        for digest, rel in todo:
            target = ensure_parents(vdir, rel)
            if reuse_from_other_version(model_dir, vdir, digest, rel, target):
                reused.append(rel)
                continue
            part = target.with_name(target.name + ".part")
            try:
                s3_download(client, bucket, key_of(rel), part, sizes.get(key_of(rel)))
                finish_file(part, target, digest, rel)
                downloaded.append(rel)
            except VerificationError as exc:
                problems.extend(exc.problems)
            except ClientError as exc:
                problems.append({"path": rel, "reason": f"download failed: {exc}"})
        if problems:
            raise VerificationError(problems)

        # Every file of the version was hashed in this run: the ones already present when
        # `todo` was computed, the downloaded ones in finish_file(). So a version is verified
        # on EVERY run, not only when something was downloaded.
        manifest_path = vdir / MANIFEST
        if not manifest_path.exists() or manifest_path.read_bytes() != manifest:
            write_atomic(manifest_path, manifest)
        return {
            "changed": bool(downloaded or reused),
            "version": version,
            "path": str(vdir),
            "files": len(entries),
            "downloaded": downloaded,
            "reused": reused,
        }


# --- Hugging Face Hub -------------------------------------------------------------------------
# Only usable on hosts that reach huggingface.co (or an HF mirror via HF_ENDPOINT). Not exercised
# by the project's tests, which run without internet.


def git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cmd_sync_hf(args) -> dict:
    import fnmatch

    from huggingface_hub import HfApi, hf_hub_download

    spec = args.source[len("hf://"):] if args.source.startswith("hf://") else None
    if not spec:
        raise Failure(f"not an hf:// source: {args.source!r}")
    repo, _, revision = spec.partition("@")
    token = os.environ.get("HF_TOKEN") or None
    if args.credentials_file:
        with open(args.credentials_file, encoding="utf-8") as handle:
            token = json.load(handle).get("hf_token") or token
    api = HfApi(token=token)
    info = api.model_info(repo, revision=revision or "main", files_metadata=True)
    version = info.sha  # the commit: a branch name is resolved once, then pinned
    patterns = args.allow_pattern or ["*"]
    siblings = [s for s in info.siblings if any(fnmatch.fnmatch(s.rfilename, p) for p in patterns)]
    if not siblings:
        raise Failure(f"no file of {repo}@{version} matches {patterns}")

    model_dir = Path(args.model_dir)
    with locked(model_dir):
        vdir = model_dir / "versions" / version
        make_dirs(vdir.parent)
        make_dirs(vdir)
        manifest_path = vdir / MANIFEST
        downloaded, lines, problems = [], [], []
        known = {}
        if manifest_path.exists():
            known = {rel: d for d, rel in parse_manifest(manifest_path.read_text("utf-8"))}
        for sibling in siblings:
            rel = sibling.rfilename
            lfs_sha = sibling.lfs.sha256 if sibling.lfs else None
            expected = lfs_sha or known.get(rel)
            if expected and check_file(vdir, expected, rel) is None:
                lines.append(f"{expected}  {rel}")
                continue
            fetched = Path(
                hf_hub_download(repo, rel, revision=version, local_dir=str(vdir), token=token)
            )
            os.chmod(fetched, FILE_MODE)
            actual = sha256_file(fetched)
            if lfs_sha and actual != lfs_sha:
                problems.append({"path": rel, "reason": "sha256 mismatch after download"})
            elif not lfs_sha and sibling.blob_id and git_blob_sha1(fetched) != sibling.blob_id:
                problems.append({"path": rel, "reason": "git blob id mismatch after download"})
            lines.append(f"{actual}  {rel}")
            downloaded.append(rel)
        if problems:
            raise VerificationError(problems)
        manifest = ("\n".join(sorted(lines, key=lambda line: line[66:])) + "\n").encode()
        entries = parse_manifest(manifest.decode())
        verify_dir(vdir, entries)
        if not manifest_path.exists() or manifest_path.read_bytes() != manifest:
            write_atomic(manifest_path, manifest)
        shutil.rmtree(vdir / ".cache", ignore_errors=True)  # huggingface_hub's local_dir metadata
        return {
            "changed": bool(downloaded),
            "version": version,
            "path": str(vdir),
            "files": len(entries),
            "downloaded": downloaded,
        }


# --- verify / activate / prune ----------------------------------------------------------------


def cmd_verify(args) -> dict:
    vdir = Path(args.model_dir) / "versions" / args.version
    manifest_path = vdir / MANIFEST
    if not manifest_path.is_file():
        raise VerificationError([{"path": MANIFEST, "reason": "missing"}])
    entries = parse_manifest(manifest_path.read_text("utf-8"))
    verify_dir(vdir, entries)
    return {"changed": False, "version": args.version, "files": len(entries)}


def cmd_activate(args) -> dict:
    model_dir = Path(args.model_dir)
    with locked(model_dir):
        vdir = model_dir / "versions" / args.version
        if not (vdir / MANIFEST).is_file():
            raise Failure(f"{vdir} has no {MANIFEST}: refusing to activate an unverified version")
        target = f"versions/{args.version}"
        current = model_dir / "current"
        previous = os.readlink(current) if current.is_symlink() else None
        if previous == target:
            return {"changed": False, "current": target, "previous": previous}
        if current.exists() and not current.is_symlink():
            raise Failure(f"{current} exists and is not a symlink")
        tmp = model_dir / f".current.tmp-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, current)  # rename(2): readers see the old or the new target, never none
        dir_fd = os.open(model_dir, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return {"changed": True, "current": target, "previous": previous}


def cmd_prune(args) -> dict:
    """Keep `current`, the deployed version and the newest complete others up to --keep in all.

    Incomplete versions (no manifest: a download that failed or was superseded) go first.
    """
    model_dir = Path(args.model_dir)
    versions = model_dir / "versions"
    with locked(model_dir):
        current = model_dir / "current"
        active = Path(os.readlink(current)).name if current.is_symlink() else None
        protected = {v for v in (active, args.version) if v}
        others = [p for p in versions.iterdir() if p.is_dir() and p.name not in protected] if versions.is_dir() else []
        complete = sorted((p for p in others if (p / MANIFEST).is_file()), key=lambda p: p.stat().st_mtime, reverse=True)
        incomplete = [p for p in others if not (p / MANIFEST).is_file()]
        room = max(args.keep - len(protected), 0)
        removed = sorted(p.name for p in [*complete[room:], *incomplete])
        for name in removed:
            shutil.rmtree(versions / name)
        return {"changed": bool(removed), "removed": removed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    s3 = sub.add_parser("sync-s3")
    s3.add_argument("--source", required=True, help="s3://bucket/prefix")
    s3.add_argument("--model-dir", required=True)
    s3.add_argument("--credentials-file", help="JSON: endpoint, access_key, secret_key, region")
    s3.add_argument("--min-free-bytes", type=int, default=0)
    s3.set_defaults(func=cmd_sync_s3)

    hf = sub.add_parser("sync-hf")
    hf.add_argument("--source", required=True, help="hf://org/name@revision")
    hf.add_argument("--model-dir", required=True)
    hf.add_argument("--allow-pattern", action="append", default=[])
    hf.add_argument("--credentials-file", help="JSON with hf_token (else HF_TOKEN from env)")
    hf.set_defaults(func=cmd_sync_hf)

    for name, func in (("verify", cmd_verify), ("activate", cmd_activate)):
        cmd = sub.add_parser(name)
        cmd.add_argument("--model-dir", required=True)
        cmd.add_argument("--version", required=True)
        cmd.set_defaults(func=func)

    prune = sub.add_parser("prune")
    prune.add_argument("--model-dir", required=True)
    prune.add_argument("--version", required=True, help="version being deployed (kept)")
    prune.add_argument("--keep", type=int, default=2, help="versions kept, current included")
    prune.set_defaults(func=cmd_prune)

    args = parser.parse_args(argv)
    os.umask(0o022)
    started = time.monotonic()
    try:
        result = args.func(args)
        code = 0
    except VerificationError as exc:
        result = {"changed": False, "failed_files": exc.problems, "msg": str(exc)}
        code = 2
    except Failure as exc:
        result = {"changed": False, "msg": str(exc)}
        code = 1
    result["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
