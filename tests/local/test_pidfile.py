"""Daemon: PID file, readiness, stop by PID (no root needed)."""

from __future__ import annotations

import socket
import sys

import pytest

from infra.local.pidfile import Daemon, DaemonError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_ready_on_port_then_stop(tmp_path):
    port = _free_port()
    d = Daemon("http", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], tmp_path)
    pid = d.start(ready=port, timeout=20)
    try:
        assert d.running and d.pid == pid
        assert (tmp_path / "http.pid").read_text().split()[0] == str(pid)
        assert d.start(ready=port) == pid  # already running: no second process
    finally:
        d.stop()
    assert not d.running and not (tmp_path / "http.pid").exists()
    assert (tmp_path / "http.log").exists()
    d.stop()  # idempotent


def test_stop_escalates_to_sigkill(tmp_path):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(600)"
    )
    d = Daemon("stubborn", [sys.executable, "-c", code], tmp_path)
    d.start(ready=lambda: "up" in d.log_tail(), timeout=20)
    d.stop(timeout=0.5)
    assert not d.running


def test_exit_before_ready_reports_log(tmp_path):
    d = Daemon("broken", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path)
    with pytest.raises(DaemonError, match="boom"):
        d.start(ready=lambda: False, timeout=20)
    assert not d.running


def test_stale_pidfile_with_reused_pid_is_ignored(tmp_path):
    # Our own PID with a wrong start time: must not be taken for the daemon (and never signalled).
    (tmp_path / "x.pid").write_text(f"{__import__('os').getpid()} 1\n")
    d = Daemon("x", ["true"], tmp_path)
    assert d.pid is None
    d.stop()
    assert not (tmp_path / "x.pid").exists()


def test_port_in_use_is_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        d = Daemon("dup", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
        with pytest.raises(DaemonError, match="already in use"):
            d.start(ready=port)
        assert not d.running
