"""Public API cost versus a self-hosted stand: monthly figures, break-even DAU, purchase payback."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from infra import catalog
from infra.config.checks import resolve_offer
from infra.config.model import Stand


@dataclass(frozen=True)
class Workload:
    dau: int
    messages_per_user: float
    input_tokens: int
    output_tokens: int
    days: int


@dataclass(frozen=True)
class ApiCost:
    model: str
    per_user_usd: float  # one daily active user for a month
    monthly_usd: float


@dataclass
class StandCost:
    stack: str
    monthly_rub: float
    rub_per_usd: float
    lines: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)  # what the catalog has no price for

    @property
    def monthly_usd(self) -> float:
        return round(self.monthly_rub / self.rub_per_usd, 2)


@dataclass(frozen=True)
class Payback:
    gpu: str
    rent_rub_month: dict[str, float | None]  # per cloud
    purchase_usd: float
    months: int  # against the cheapest rent


def api_costs(w: Workload) -> list[ApiCost]:
    result = []
    for name, price in catalog.load().api_models.items():
        per_message = (w.input_tokens * price.input_usd_per_mtok + w.output_tokens * price.output_usd_per_mtok) / 1e6
        per_user = per_message * w.messages_per_user * w.days
        result.append(ApiCost(name, round(per_user, 6), round(per_user * w.dau, 2)))
    return result


def rate(stand: Stand | None = None, override: float | None = None) -> float:
    return override or (stand.cost.rub_per_usd if stand and stand.cost.rub_per_usd else None) or catalog.load().rub_per_usd


def stand_cost(stand: Stand, rub_per_usd: float | None = None) -> StandCost:
    """Monthly GPU cost of a stand: cloud rent, or onprem purchase written off over the amortisation period."""
    cat = catalog.load()
    cost = StandCost(stand.stack, 0.0, rate(stand, rub_per_usd))
    engine = stand.hosts.engine
    if stand.is_cloud:
        offer = resolve_offer(stand)
        cards = engine.replicas * engine.gpus_per_host
        if offer is None or offer.rent_rub_month is None:
            cost.unpriced.append(f"{cards} x {engine.gpu} ({offer.id if offer else 'no offer'})")
        else:
            cost.monthly_rub += cards * offer.rent_rub_month
            cost.lines.append(f"{cards} x {engine.gpu} rented ({offer.id}) x {offer.rent_rub_month:,.0f} RUB")
        cost.unpriced.append("edge host (CPU VM), disks, traffic, object storage")
    elif stand.target == "onprem":
        for host in stand.hosts.existing:
            gpu = cat.gpus.get(host.gpu or "")
            if not host.gpus:
                continue
            if gpu is None or gpu.purchase_usd is None:
                cost.unpriced.append(f"{host.name}: {host.gpus} x {host.gpu}")
                continue
            monthly = host.gpus * gpu.purchase_usd * cost.rub_per_usd / stand.cost.amortization_months
            cost.monthly_rub += monthly
            cost.lines.append(f"{host.name}: {host.gpus} x {host.gpu} bought, written off over "
                              f"{stand.cost.amortization_months} months")
        cost.unpriced.append("power, space, staff")
    else:
        cost.lines.append("local stand: no rent")
    cost.monthly_rub = round(cost.monthly_rub, 2)
    return cost


def break_even_dau(stand_usd: float, per_user_usd: float) -> int | None:
    """The DAU above which the stand is cheaper than the API; None when the stand costs nothing."""
    if stand_usd <= 0 or per_user_usd <= 0:
        return None
    return math.floor(stand_usd / per_user_usd) + 1


def payback(rub_per_usd: float | None = None) -> list[Payback]:
    """Months of the cheapest rent that buy the card (the seed's table: H100 7, A100 11, L40S 7)."""
    cat = catalog.load()
    fx = rub_per_usd or cat.rub_per_usd
    rows = []
    for name, gpu in cat.gpus.items():
        rents = {cloud: next((o.rent_rub_month for o in cat.offers_for(cloud, name) if o.rent_rub_month), None)
                 for cloud in cat.clouds}
        priced = [r for r in rents.values() if r]
        if gpu.purchase_usd is None or not priced:
            continue
        rows.append(Payback(name, rents, gpu.purchase_usd, math.ceil(gpu.purchase_usd * fx / min(priced))))
    return rows
