"""Small facts every component shares: labels, placement and sizing derived from the stand."""

from __future__ import annotations

import math

from infra import PROJECT, catalog, sizing
from infra.config.model import Stand

DISK_PER_WEIGHTS = 2  # weights once in the mirror cache, once converted/unpacked by the engine
DISK_BASE_GB = 50  # OS, CUDA, the engine's venv and logs


def labels(stack: str, role: str | None = None) -> dict[str, str]:
    """Labels/metadata put on every cloud resource (Yandex allows [a-z0-9_-] keys and values)."""
    out = {"stand": stack, "managed-by": PROJECT}
    if role:
        out["role"] = role
    return out


def engine_disk_gb(stand: Stand) -> int:
    """Boot disk of an engine host: the configured size, else room for the weights twice plus the OS."""
    if stand.hosts.engine.disk_gb:
        return stand.hosts.engine.disk_gb
    weights = sizing.requirement(stand.model.params_b, stand.model.precision).weights_gb
    return math.ceil(weights * DISK_PER_WEIGHTS + DISK_BASE_GB)


def model_cache_gb(stand: Stand) -> int:
    """A pod's model volume: one copy of the weights plus a margin."""
    return math.ceil(sizing.requirement(stand.model.params_b, stand.model.precision).weights_gb * 1.2) + 1


def cloud_defaults(stand: Stand) -> catalog.CloudDefaults | None:
    return catalog.load().clouds.get(stand.target) if stand.is_cloud else None


def region(stand: Stand) -> str | None:
    defaults = cloud_defaults(stand)
    return stand.region or (defaults.region if defaults else None)


def zone(stand: Stand) -> str | None:
    defaults = cloud_defaults(stand)
    return stand.zone or (defaults.zone if defaults else None)


def mirror_endpoint(stand: Stand) -> str | None:
    defaults = cloud_defaults(stand)
    return stand.artifacts.endpoint or (defaults.storage_endpoint if defaults else None)


def label_value(value: str) -> str:
    """A value Yandex accepts as a label (lowercase letters, digits, - and _)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())
