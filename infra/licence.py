"""The licence gate: prod and fallback refuse a restricted or unknown licence unless accepted by id."""

from __future__ import annotations

from dataclasses import dataclass

from infra import catalog
from infra.config.model import PROD_STACKS, ModelSpec


@dataclass(frozen=True)
class Verdict:
    licence: str
    known: bool
    restricted: bool
    accepted: bool
    allowed: bool
    note: str

    def __str__(self) -> str:
        state = "allowed" if self.allowed else "refused"
        extra = ", accepted by the stack" if self.accepted and self.restricted else ""
        return f"{self.licence}: {state}{extra} ({self.note})"


def verdict(model: ModelSpec, stack: str) -> Verdict:
    entry = catalog.load().licences.get(model.licence)
    known = entry is not None
    restricted = entry.restricted if entry else True
    accepted = model.licence_accepted == model.licence
    gated = stack in PROD_STACKS
    note = entry.note if entry else "not in infra/catalogs/licences.yaml"
    allowed = not gated or not restricted or accepted
    return Verdict(model.licence, known, restricted, accepted, allowed, note)
