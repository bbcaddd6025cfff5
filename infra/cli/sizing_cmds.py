"""`stand size`, `stand cost`, `stand payback`: the seed's arithmetic, from the catalogs."""

from __future__ import annotations

import typer
from rich.table import Table

from infra import catalog, cost, sizing
from infra.cli.output import JsonOpt, console, emit_json, fail
from infra.config import load_stand

PRECISIONS = ", ".join(sizing.BYTES_PER_PARAM)


def size(
    params: float = typer.Option(..., "--params", help="Total parameters, billions (235 for Qwen3-235B-A22B)."),
    precision: str = typer.Option(..., "--precision", help=f"One of: {PRECISIONS}."),
    gpu_memory_utilization: float = typer.Option(0.9, "--gpu-memory-utilization", min=0.1, max=0.98),
    as_json: bool = JsonOpt,
) -> None:
    """vRAM a model needs (weights + 20% KV cache) and the smallest GPU groups that hold it."""
    if precision not in sizing.BYTES_PER_PARAM:
        fail(f"--precision: unknown precision {precision!r}; use one of: {PRECISIONS}", as_json=as_json)
    if params <= 0:
        fail("--params: give the parameter count in billions, above 0", as_json=as_json)
    req = sizing.requirement(params, precision)
    options = sizing.gpu_options(req, gpu_memory_utilization)
    if as_json:
        emit_json({"ok": True, "params_b": params, "precision": precision,
                   "bytes_per_param": sizing.BYTES_PER_PARAM[precision], "weights_gb": req.weights_gb,
                   "kv_cache_gb": req.kv_cache_gb, "total_gb": req.total_gb,
                   "gpu_memory_utilization": gpu_memory_utilization,
                   "options": [o.__dict__ | {"offers": list(o.offers)} for o in options]})
        return
    console.print(f"{sizing.fmt_gb(params)}B params x {sizing.BYTES_PER_PARAM[precision]:g} bytes ({precision}) = "
                  f"{sizing.fmt_gb(req.weights_gb)} GB weights + {sizing.fmt_gb(req.kv_cache_gb)} GB KV cache (20%)")
    console.print(f"vRAM needed: {sizing.fmt_gb(req.total_gb)} GB", style="bold")
    table = Table(title=f"GPU groups that fit (at gpu_memory_utilization {gpu_memory_utilization:g})")
    for col in ("GPU", "cards", "usable GB", "headroom GB", "rent RUB/month", "offers"):
        table.add_column(col)
    for o in options:
        rent = f"{o.rent_rub_month:,.0f}" if o.rent_rub_month else "-"
        table.add_row(o.gpu, str(o.count), sizing.fmt_gb(o.usable_gb), sizing.fmt_gb(o.headroom_gb), rent,
                      ", ".join(o.offers) or "buy")
    if options:
        console.print(table)
    else:
        console.print("No single host of up to 8 cards holds it: shard across hosts or quantise.", style="red")


def cost_cmd(
    dau: int = typer.Option(..., "--dau", min=1, help="Daily active users."),
    messages_per_user: float = typer.Option(..., "--messages-per-user", min=0.01),
    input_tokens: int = typer.Option(..., "--input-tokens", min=0),
    output_tokens: int = typer.Option(..., "--output-tokens", min=0),
    days: int = typer.Option(None, "--days", min=1, help="Days per month (catalog: 30)."),
    stack: str = typer.Option(None, "--stack", help="Add this stack's self-hosted cost and the break-even DAU."),
    rub_per_usd: float = typer.Option(None, "--rub-per-usd", min=1, help="Exchange rate (catalog or stack if unset)."),
    as_json: bool = JsonOpt,
) -> None:
    """Monthly public API cost of a workload, and against a stand: which is cheaper, from what DAU."""
    workload = cost.Workload(dau, messages_per_user, input_tokens, output_tokens, days or catalog.load().days_per_month)
    apis = cost.api_costs(workload)
    result: dict = {"ok": True, "workload": workload.__dict__, "api": [a.__dict__ for a in apis]}
    stand_cost = None
    if stack:
        stand = load_stand(stack)
        stand_cost = cost.stand_cost(stand, rub_per_usd)
        result["stand"] = {"stack": stand.stack, "monthly_rub": stand_cost.monthly_rub,
                           "monthly_usd": stand_cost.monthly_usd, "rub_per_usd": stand_cost.rub_per_usd,
                           "lines": stand_cost.lines, "not_included": stand_cost.unpriced,
                           "break_even_dau": {a.model: cost.break_even_dau(stand_cost.monthly_usd, a.per_user_usd)
                                              for a in apis}}
    if as_json:
        emit_json(result)
        return
    console.print(f"{dau:,} DAU x {messages_per_user:g} messages x ({input_tokens:,} in + {output_tokens:,} out tokens)"
                  f" x {workload.days} days")
    for a in apis:
        console.print(f"  {a.model}: ${a.monthly_usd:,.0f}/month (${a.per_user_usd:,.2f} per DAU)")
    if stand_cost:
        console.print(f"stack {stack}: {stand_cost.monthly_rub:,.0f} RUB/month = ${stand_cost.monthly_usd:,.0f}"
                      f" at {stand_cost.rub_per_usd:g} RUB/USD")
        for line in stand_cost.lines:
            console.print(f"  {line}")
        if stand_cost.unpriced:
            console.print(f"  not included: {'; '.join(stand_cost.unpriced)}")
        for model, dau_even in result["stand"]["break_even_dau"].items():
            verdict = f"self-hosting is cheaper above {dau_even:,} DAU" if dau_even else "no GPU cost to compare"
            console.print(f"  vs {model}: {verdict}")


def payback_cmd(
    rub_per_usd: float = typer.Option(None, "--rub-per-usd", min=1, help="Exchange rate (catalog if unset)."),
    as_json: bool = JsonOpt,
) -> None:
    """Rent or buy: monthly rent per cloud, purchase price and months until a purchase pays back."""
    rows = cost.payback(rub_per_usd)
    cat = catalog.load()
    if as_json:
        emit_json({"ok": True, "rub_per_usd": rub_per_usd or cat.rub_per_usd, "prices_taken": cat.prices_taken,
                   "rows": [r.__dict__ for r in rows]})
        return
    table = Table(title=f"Rent vs buy (prices {cat.prices_taken}; {rub_per_usd or cat.rub_per_usd:g} RUB/USD)")
    for col in ("GPU", *[c for c in cat.clouds], "buy", "payback"):
        table.add_column(col)
    for r in rows:
        rents = [f"{v:,.0f} RUB/mo" if v else "-" for v in r.rent_rub_month.values()]
        table.add_row(r.gpu, *rents, f"${r.purchase_usd:,.0f}", f"{r.months} months")
    console.print(table)
