"""Background daemons tracked by a PID file, never by process name.

    d = Daemon("s3", ["weed", "mini", ...], state_dir)
    d.start(ready=8333)          # or ready=("10.213.0.1", 3142), or ready=callable -> bool
    d.running, d.pid
    d.stop()                     # SIGTERM, then SIGKILL of its process group after a timeout
    d.wait(timeout)              # exit code, for a process this object started (e.g. a build)

Files: STATE_DIR/NAME.pid ("PID STARTTIME") and STATE_DIR/NAME.log (stdout+stderr, appended).
The start time (from /proc/PID/stat) guards against PID reuse: a PID file whose process has
died and whose PID now belongs to something else is treated as stale, so `stop()` can never
signal an unrelated process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from infra.errors import StandError

Ready = None | int | tuple[str, int] | Callable[[], bool]


class DaemonError(StandError):
    """The daemon exited or did not become ready; the message ends with its log tail."""


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, starttime) of a process, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child (otherwise it stays a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Daemon:
    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike],
        state_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.state_dir = Path(state_dir)
        self.env = env
        self.cwd = cwd
        self.pid_path = self.state_dir / f"{name}.pid"
        self.log_path = self.state_dir / f"{name}.log"
        self._proc: subprocess.Popen | None = None  # set when this object started it

    # -- state -------------------------------------------------------------------------------

    def _read_pidfile(self) -> tuple[int, int] | None:
        try:
            pid_s, start_s = self.pid_path.read_text().split()
            return int(pid_s), int(start_s)
        except (FileNotFoundError, ValueError):
            return None

    @property
    def pid(self) -> int | None:
        """PID of the live process from the PID file, or None (no file, dead, or PID reused)."""
        entry = self._read_pidfile()
        if entry is None:
            return None
        pid, start = entry
        if self._proc is not None and self._proc.pid == pid:
            self._proc.poll()  # reap through Popen so wait() keeps the exit code
        else:
            _reap(pid)
        stat = _proc_stat(pid)
        if stat is None or stat[1] != start or stat[0] in ("Z", "X"):
            return None
        return pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # -- start / stop ------------------------------------------------------------------------

    def start(self, ready: Ready = None, timeout: float = 60.0) -> int:
        """Start unless already running; wait until `ready` holds. Returns the PID.

        ready: None (no wait), a TCP port on 127.0.0.1, a (host, port) pair, or a callable
        returning True once the daemon is usable.
        """
        pid = self.pid
        if pid is not None:
            return pid
        port = _ready_port(ready)
        if port and port_open(*port):
            # Otherwise the readiness check would pass on someone else's listener.
            raise DaemonError(f"{self.name}: {port[0]}:{port[1]} is already in use by another process")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%F %T')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own session/group: survives our terminal, killable as a group
            )
        self._proc = proc
        stat = _proc_stat(proc.pid)
        tmp = self.pid_path.with_suffix(".pid.tmp")
        tmp.write_text(f"{proc.pid} {stat[1] if stat else 0}\n")
        tmp.replace(self.pid_path)
        try:
            self._wait_ready(proc, ready, timeout)
        except DaemonError:
            self.stop(timeout=5)
            raise
        return proc.pid

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code of a process this object started, or None if still running after timeout."""
        if self._proc is None:
            raise DaemonError(f"{self.name}: wait() needs the process to be started by this object")
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _wait_ready(self, proc: subprocess.Popen, ready: Ready, timeout: float) -> None:
        check = _ready_check(ready)
        if check is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise DaemonError(
                    f"{self.name} exited with code {proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if check():
                return
            if time.monotonic() > deadline:
                raise DaemonError(
                    f"{self.name} not ready after {timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the PID from the file, SIGKILL its process group after `timeout`. Idempotent."""
        pid = self.pid
        if pid is not None:
            _signal(pid, signal.SIGTERM)
            if not self._wait_gone(pid, timeout):
                try:
                    os.killpg(pid, signal.SIGKILL)  # its own group: we started it with a new session
                except (ProcessLookupError, PermissionError):
                    _signal(pid, signal.SIGKILL)
                if not self._wait_gone(pid, 10.0):
                    raise DaemonError(f"{self.name} (pid {pid}) survived SIGKILL")
        self.pid_path.unlink(missing_ok=True)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid != pid:
                return True
            time.sleep(0.1)
        return self.pid != pid


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _ready_port(ready: Ready) -> tuple[str, int] | None:
    if isinstance(ready, bool):
        return None
    if isinstance(ready, int):
        return ("127.0.0.1", ready)
    if isinstance(ready, tuple):
        return (ready[0], int(ready[1]))
    return None


def _ready_check(ready: Ready) -> Callable[[], bool] | None:
    if ready is None:
        return None
    port = _ready_port(ready)
    if port is not None:
        return lambda: port_open(*port)
    return ready
