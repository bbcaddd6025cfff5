"""apt-cacher-ng for local hosts: bound to the bridge address, run under our own Daemon.

It runs in the foreground with a private config dir (under the state dir) and a per-bridge
cache dir, so the system's apt-cacher-ng service and its files are never touched and two
networks can each have one. Debian's package ships an empty backends_debian (it then answers
503 for Debian mirrors): we write the mirror that this machine's own apt sources use.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .pidfile import Daemon
from .system import PrerequisiteError, run

PORT = 3142
_SUPPORT_DIR = Path("/usr/lib/apt-cacher-ng")
# Debian security mirrors, all served as one backend: "<paths it answers> ; <upstream URLs>".
_SECURITY_REMAP = " ".join([
    "security.debian.org", "security.debian.org/debian-security", "deb.debian.org/debian-security",
    "/debian-security", "cdn-fastly.deb.debian.org/debian-security", ";",
    "deb.debian.org/debian-security", "security.debian.org", "cdn-fastly.deb.debian.org/debian-security",
])
_SOURCES = Path("/etc/apt/sources.list")
_SOURCES_D = Path("/etc/apt/sources.list.d")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def _parse_one_line(line: str) -> list[AptSource]:
    parts = line.split("#", 1)[0].split()
    if len(parts) < 3 or parts[0] != "deb":
        return []
    if parts[1].startswith("["):  # options like [signed-by=...]
        while parts and not parts[1].endswith("]"):
            parts.pop(1)
        parts.pop(1)
    return [AptSource(parts[1].rstrip("/"), parts[2], tuple(parts[3:]))]


def _parse_deb822(text: str) -> list[AptSource]:
    found = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for raw in stanza.splitlines():
            if raw.startswith("#") or ":" not in raw or raw[:1].isspace():
                continue
            key, value = raw.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                found.append(AptSource(uri.rstrip("/"), suite, tuple(fields.get("components", "main").split())))
    return found


def machine_sources() -> list[AptSource]:
    """The `deb` sources this machine's apt uses (one-line and deb822 formats)."""
    found: list[AptSource] = []
    files = [_SOURCES] + (sorted(_SOURCES_D.iterdir()) if _SOURCES_D.is_dir() else [])
    for path in files:
        if not path.is_file():
            continue
        if path.suffix == ".sources":
            found += _parse_deb822(path.read_text())
        elif path.suffix == ".list" or path == _SOURCES:
            for line in path.read_text().splitlines():
                found += _parse_one_line(line)
    return found


def debian_mirror(suite: str = "bookworm") -> str:
    """URI of the machine's Debian mirror for `suite`, e.g. http://deb.debian.org/debian."""
    for src in machine_sources():
        if src.suite == suite:
            return src.uri
    raise PrerequisiteError(f"no 'deb ... {suite}' entry in /etc/apt/sources.list(.d): cannot pick a Debian mirror")


def debian_sources(suite: str = "bookworm") -> list[AptSource]:
    """Sources for hosts: the machine's main mirror (suite, -updates) and its security mirror."""
    main = debian_mirror(suite)
    out = [AptSource(main, suite, ("main",))]
    machine = machine_sources()
    if any(s.suite == f"{suite}-updates" for s in machine):
        out.append(AptSource(main, f"{suite}-updates", ("main",)))
    for s in machine:
        if s.suite == f"{suite}-security":
            out.append(AptSource(s.uri, s.suite, ("main",)))
            break
    return out


class AptCache:
    """apt-cacher-ng on ADDRESS:3142 with config in STATE_DIR and cache in CACHE_DIR."""

    def __init__(self, address: str, state_dir: Path, cache_dir: Path, suite: str = "bookworm"):
        self.address = address
        self.state_dir = Path(state_dir)
        self.cache_dir = Path(cache_dir)
        self.suite = suite
        self.conf_dir = self.state_dir / "conf"
        self.daemon = Daemon(
            "apt-cacher-ng",
            ["apt-cacher-ng", "-c", self.conf_dir, "ForeGround=1"],
            self.state_dir,
        )

    @property
    def url(self) -> str:
        return f"http://{self.address}:{PORT}"

    @property
    def running(self) -> bool:
        return self.daemon.running

    def _write_config(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.cache_dir / "cache").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "log").mkdir(parents=True, exist_ok=True)
        conf = f"""\
# Written by infra.local.aptcache: a private instance, not the system service.
CacheDir: {self.cache_dir / 'cache'}
LogDir: {self.state_dir / 'log'}
SupportDir: {_SUPPORT_DIR}
SocketPath: {self.state_dir / 'socket'}
PidFile: {self.state_dir / 'acng-internal.pid'}
BindAddress: {self.address}
Port: {PORT}
Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian
Remap-secdeb: {_SECURITY_REMAP}
ExThreshold: 4
FollowIndexFileRemoval: 1
ReportPage: acng-report.html
"""
        (self.conf_dir / "acng.conf").write_text(conf)
        (self.conf_dir / "backends_debian").write_text(debian_mirror(self.suite) + "/\n")

    def start(self, progress=lambda msg: None) -> None:
        if self.running:
            return
        if not shutil.which("apt-cacher-ng"):
            raise PrerequisiteError("apt-cacher-ng missing: run scripts/setup (it installs apt-cacher-ng)")
        self._write_config()
        progress(f"apt-cacher-ng: starting on {self.url}")
        self.daemon.start(ready=(self.address, PORT), timeout=30)

    def stop(self) -> None:
        self.daemon.stop(timeout=10)

    def warm(self, progress=lambda msg: None, timeout: float = 300.0) -> None:
        """One serial `apt-get update` through the proxy, with private apt dirs.

        Parallel first updates from several hosts once hung on a 0-byte InRelease, so the
        indexes are fetched once here before hosts start. The machine's own apt state is
        untouched (lists and sources go to a temporary dir).
        """
        progress("apt-cacher-ng: warming with one apt-get update")
        with tempfile.TemporaryDirectory(prefix="acng-warm-") as tmp:
            work = Path(tmp)
            (work / "lists" / "partial").mkdir(parents=True)
            (work / "parts").mkdir()
            sources = "\n".join(s.line() for s in debian_sources(self.suite)) + "\n"
            (work / "sources.list").write_text(sources)
            run(
                [
                    "apt-get", "update", "-q",
                    "-o", f"Dir::Etc::SourceList={work / 'sources.list'}",
                    "-o", f"Dir::Etc::SourceParts={work / 'parts'}",
                    "-o", f"Dir::State::Lists={work / 'lists'}",
                    "-o", f"Dir::Cache={work / 'cache'}",
                    "-o", f"Acquire::http::Proxy={self.url}",
                    "-o", "APT::Sandbox::User=root",
                    "-o", "Acquire::Retries=2",
                    "-o", "Acquire::http::Timeout=60",
                ],
                timeout=timeout,
            )
