"""Configuration problems: each names its field and the fix, and all of them are reported at once."""

from __future__ import annotations

from dataclasses import dataclass

from infra.errors import InvalidInput


@dataclass(frozen=True)
class Problem:
    field: str  # dotted path as written in the stack file, e.g. "llm-stands:hosts.engine.gpu"
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "fix": self.fix}


class StandConfigError(InvalidInput):
    """Raised before anything is created or changed; carries every problem found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.config_problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)", f"run: stand check {source}")
        # The one-line message plus every problem, as the inventory and tests print it.
        self.args = (f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems),)

    def problems(self) -> list[dict[str, str]]:
        return [p.as_dict() for p in self.config_problems]
