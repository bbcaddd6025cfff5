"""The seed's figures, reproduced exactly by the CLI (DIGEST.md sections 1 and 2)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("precision, total", [("bf16", 564.0), ("q4_k_m", 141.0)])
def test_size_reproduces_qwen_235b(stand_cli, stand_json, precision, total):
    code, data = stand_json("size", "--params", "235", "--precision", precision)
    assert code == 0 and data["total_gb"] == total
    text = stand_cli("size", "--params", "235", "--precision", precision).stdout
    assert f"vRAM needed: {total:.0f} GB" in text


def test_size_options_fit_and_are_smallest(stand_json):
    _, data = stand_json("size", "--params", "235", "--precision", "bf16")
    by_gpu = {o["gpu"]: o for o in data["options"]}
    assert by_gpu["A100-80G"]["count"] == 8 and by_gpu["H100-80G"]["count"] == 8
    assert "L40S-48G" not in by_gpu  # 8 x 48 GB x 0.9 = 345.6 GB < 564 GB
    assert all(o["usable_gb"] >= 564 and o["headroom_gb"] >= 0 for o in data["options"])
    _, q4 = stand_json("size", "--params", "235", "--precision", "q4_k_m")
    assert {o["gpu"]: o["count"] for o in q4["options"]}["A100-80G"] == 2


def test_cost_reproduces_api_example(stand_cli, stand_json):
    args = ("cost", "--dau", "1000", "--messages-per-user", "10", "--input-tokens", "2000", "--output-tokens", "2000")
    code, data = stand_json(*args)
    assert code == 0
    assert {a["model"]: a["monthly_usd"] for a in data["api"]} == {"gpt-5": 6750.0, "gpt-5-mini": 1350.0}
    text = stand_cli(*args).stdout
    assert "gpt-5: $6,750/month" in text and "gpt-5-mini: $1,350/month" in text


def test_cost_with_stack_gives_break_even(stand_json):
    code, data = stand_json("cost", "--dau", "1000", "--messages-per-user", "10", "--input-tokens", "2000",
                            "--output-tokens", "2000", "--stack", "prod", "--rub-per-usd", "80")
    assert code == 0
    stand = data["stand"]
    # prod rents 2 hosts x 4 A100 on Yandex at 300,000 RUB per card.
    assert stand["monthly_rub"] == 2_400_000 and stand["monthly_usd"] == 30_000
    # $30,000 / $6.75 per DAU = 4444.4: above 4,444 DAU the stand is cheaper than gpt-5.
    assert stand["break_even_dau"] == {"gpt-5": 4445, "gpt-5-mini": 22223}


def test_payback_reproduces_rent_vs_buy_table(stand_json):
    code, data = stand_json("payback")
    assert code == 0
    rows = {r["gpu"]: r for r in data["rows"]}
    assert {g: r["months"] for g, r in rows.items()} == {"H100-80G": 7, "A100-80G": 11, "L40S-48G": 7}
    assert rows["A100-80G"]["rent_rub_month"] == {"yandex": 300000, "selectel": 180000, "vk": 225000}
    assert rows["H100-80G"]["purchase_usd"] == 30000 and rows["L40S-48G"]["purchase_usd"] == 12500


def test_payback_depends_on_exchange_rate(stand_json):
    _, data = stand_json("payback", "--rub-per-usd", "100")
    assert {r["gpu"]: r["months"] for r in data["rows"]}["A100-80G"] == 14  # 2.4M RUB / 180k
