"""vRAM sizing, the seed's rule: weights = params x bytes per param, plus 20% of that for the KV cache.

A model fits a tensor-parallel group when weights x 1.2 <= cards x memory x gpu_memory_utilization.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra import catalog

BYTES_PER_PARAM = {
    "fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0,
    "int4": 0.5, "awq": 0.5, "gptq": 0.5, "q4_k_m": 0.5,
}
KV_CACHE_SHARE = 0.2  # the minimum the seed allows; dynamic scaling needs more
TP_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Requirement:
    params_b: float
    precision: str
    weights_gb: float
    kv_cache_gb: float

    @property
    def total_gb(self) -> float:
        return round(self.weights_gb + self.kv_cache_gb, 3)


@dataclass(frozen=True)
class GpuOption:
    gpu: str
    count: int
    usable_gb: float  # count x memory x utilisation
    headroom_gb: float
    offers: tuple[str, ...]  # cloud offers that rent this many cards on one VM
    rent_rub_month: float | None  # cheapest such offer, for the whole group


def requirement(params_b: float, precision: str) -> Requirement:
    weights = round(params_b * BYTES_PER_PARAM[precision], 3)
    return Requirement(params_b, precision, weights, round(weights * KV_CACHE_SHARE, 3))


def usable_gb(memory_gb: float, count: int, utilization: float) -> float:
    return round(memory_gb * count * utilization, 3)


def gpu_options(req: Requirement, utilization: float = 0.9) -> list[GpuOption]:
    """For each GPU type, the smallest power-of-two group that fits; cheapest rent first, then memory."""
    cat = catalog.load()
    options = []
    for name, gpu in cat.gpus.items():
        count = next((n for n in TP_SIZES if usable_gb(gpu.memory_gb, n, utilization) >= req.total_gb), None)
        if count is None:
            continue
        offers = [o for o in cat.offers if o.gpu == name and count in o.gpus]
        rents = [o.rent_rub_month * count for o in offers if o.rent_rub_month]
        usable = usable_gb(gpu.memory_gb, count, utilization)
        options.append(GpuOption(name, count, usable, round(usable - req.total_gb, 3),
                                 tuple(o.id for o in offers), min(rents) if rents else None))
    return sorted(options, key=lambda o: (o.rent_rub_month is None, o.rent_rub_month or 0, o.count * 1000 + o.usable_gb))


def fmt_gb(value: float) -> str:
    return f"{value:,.0f}" if abs(value - round(value)) < 0.05 else f"{value:,.1f}"
