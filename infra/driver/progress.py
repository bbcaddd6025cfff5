"""Progress of long operations: numbered phases with their duration, on stderr (stdout stays for results).

Messages carry user data (model names, paths, task names): they are printed literally, never as markup.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text


@dataclass
class Phases:
    console: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True, markup=False,
                                                             highlight=False))
    timings: dict[str, float] = field(default_factory=dict)
    quiet: bool = False

    @contextmanager
    def phase(self, name: str):
        self.say(Text.assemble(("==>", "bold cyan"), f" {name}"))
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self.say(Text.assemble(("failed", "bold red"), f" {name} after {time.monotonic() - start:.1f}s"))
            raise
        self.timings[name] = round(time.monotonic() - start, 1)
        self.say(Text.assemble("    ", ("done", "green"), f" in {self.timings[name]:.1f}s"))

    def say(self, message: str | Text) -> None:
        if not self.quiet:
            self.console.print(message)

    def detail(self, message: str) -> None:
        self.say(f"    {message}")
