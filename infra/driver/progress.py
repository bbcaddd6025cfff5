"""Progress of long operations: numbered phases with their duration, on stderr (stdout stays for results)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console


@dataclass
class Phases:
    console: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))
    timings: dict[str, float] = field(default_factory=dict)
    quiet: bool = False

    @contextmanager
    def phase(self, name: str):
        self.say(f"[bold cyan]==>[/] {name}")
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self.say(f"[bold red]failed[/] {name} after {time.monotonic() - start:.1f}s")
            raise
        self.timings[name] = round(time.monotonic() - start, 1)
        self.say(f"    [green]done[/] in {self.timings[name]:.1f}s")

    def say(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False)

    def detail(self, message: str) -> None:
        self.say(f"    {message}")
