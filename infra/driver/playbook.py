"""Run a playbook with ansible-runner: one progress line per task, the recap as data."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.config.loader import REPO_ROOT
from infra.errors import StandError


@dataclass
class PlaybookResult:
    rc: int
    status: str
    changed: dict[str, int] = field(default_factory=dict)  # every host the play reached
    handlers: list[str] = field(default_factory=list)  # handlers that ran (restarts)
    failures: list[str] = field(default_factory=list)  # "host: task: message"

    @property
    def ok(self) -> bool:
        # A limit that matches no host "succeeds" with an empty recap: that is a failure here.
        return self.rc == 0 and self.status == "successful" and bool(self.changed)

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())


class PlaybookFailed(StandError):
    def __init__(self, result: PlaybookResult, playbook: str):
        self.result = result
        detail = "\n".join(f"  - {f}" for f in result.failures) or (
            f"  status {result.status}, rc {result.rc}" if result.changed else "  no host matched the inventory limit")
        super().__init__(f"{playbook} failed:\n{detail}",
                         "fix what the failed tasks name, then run again: every phase converges")


def run_playbook(
    playbook: str,
    *,
    inventory: Path,
    private_dir: Path,
    limit: str | None = None,
    env: dict[str, str] | None = None,
    extravars: dict | None = None,
    on_line: Callable[[str], None] = lambda _: None,
    timeout: int = 3600,
) -> PlaybookResult:
    """Run playbooks/<playbook> against an inventory. Never raises for a failed play: check .ok."""
    import ansible_runner  # heavy import, only for commands that run playbooks

    result = PlaybookResult(rc=-1, status="unknown")

    def on_event(event: dict) -> bool:
        data = event.get("event_data", {})
        kind = event.get("event")
        if kind == "playbook_on_play_start":
            on_line(f"play: {data.get('play', '')}")
        elif kind == "playbook_on_task_start" and data.get("is_conditional"):
            # ansible-runner reports a handler's start as a task start with is_conditional set
            # (it never emits playbook_on_handler_task_start).
            result.handlers.append(data.get("task", ""))
            on_line(f"  handler: {data.get('task', '')}")
        elif kind == "playbook_on_task_start":
            on_line(f"  task: {data.get('task', '')}")
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            res = data.get("res", {})
            msg = res.get("msg") or res.get("stderr") or res.get("reason") or "failed"
            result.failures.append(f"{data.get('host')}: {data.get('task')}: {str(msg).strip()[:2000]}")
        elif kind == "playbook_on_stats":
            # Each of these maps only the hosts with a non-zero count: their union is every host.
            counts = [data.get(k) or {} for k in ("ok", "changed", "failures", "dark", "skipped")]
            result.changed = {h: (data.get("changed") or {}).get(h, 0) for h in sorted(set().union(*counts))}
        return True

    private_dir.mkdir(parents=True, exist_ok=True)
    # ansible-runner reads env/extravars and env/envvars of the private dir on every run, over
    # what is passed here: a file left by an earlier run (older versions of this function let
    # ansible-runner write them) would replay its variables. Nothing is written there now.
    for stale in ("extravars", "envvars"):
        (private_dir / "env" / stale).unlink(missing_ok=True)
    run = ansible_runner.run(
        private_data_dir=str(private_dir),
        project_dir=str(REPO_ROOT),
        playbook=str(REPO_ROOT / "playbooks" / playbook),
        inventory=str(inventory),
        limit=limit,
        extravars=extravars or {},
        envvars={"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), **(env or {})},
        event_handler=on_event,
        quiet=True,
        timeout=timeout,
        # Artifacts carry task output, which can include rendered secrets: keep none.
        rotate_artifacts=1,
        # Variables and environment go on the command line only, never into files under env/.
        suppress_env_files=True,
    )
    result.rc, result.status = run.rc, run.status
    return result


def ansible_env() -> dict[str, str]:
    """The venv's bin first, so ansible-runner finds the ansible-playbook that belongs to this project."""
    venv_bin = str(Path(os.sys.executable).parent)
    return {"PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
