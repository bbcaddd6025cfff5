"""Typed access to the data catalogs in infra/catalogs/ (GPUs, cloud offers, licences, API prices)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

CATALOG_DIR = Path(__file__).with_name("catalogs")
Cloud = Literal["yandex", "selectel", "vk"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gpu(_Data):
    memory_gb: float
    vendor: str
    arch: str
    purchase_usd: float | None = None


class CloudDefaults(_Data):
    region: str
    zone: str
    storage_endpoint: str
    storage_region: str
    edge_platform: str | None = None
    edge_flavor: str | None = None


class Offer(_Data):
    id: str
    cloud: Cloud
    gpu: str
    gpus: list[int]
    cores_per_gpu: int
    memory_gb_per_gpu: int
    rent_rub_month: float | None
    platform: str | None = None  # Yandex Compute platform id
    flavor_prefix: str | None = None  # OpenStack flavor, completed with the GPU count
    gpu_cluster_from: int | None = None  # Yandex needs a GPU cluster (InfiniBand) from this count
    vendor_image_driver: str | None = None  # the platform only runs the vendor image with this driver

    def flavor(self, gpus: int) -> str:
        return f"{self.flavor_prefix}-{gpus}GPU"


class Licence(_Data):
    restricted: bool
    note: str


class Family(_Data):
    licence: str
    tool_call_parser: str | None  # vLLM --tool-call-parser; None: vLLM has none for the family
    reasoning_parser: str | None  # vLLM --reasoning-parser


class ApiModel(_Data):
    input_usd_per_mtok: float
    output_usd_per_mtok: float


class Catalog(_Data):
    gpus: dict[str, Gpu]
    clouds: dict[Cloud, CloudDefaults]
    offers: list[Offer]
    prices_taken: str
    licences: dict[str, Licence]
    families: dict[str, Family]
    api_models: dict[str, ApiModel]
    days_per_month: int
    rub_per_usd: float

    def offers_for(self, cloud: str, gpu: str | None = None) -> list[Offer]:
        return [o for o in self.offers if o.cloud == cloud and (gpu is None or o.gpu == gpu)]

    def offer(self, offer_id: str) -> Offer | None:
        return next((o for o in self.offers if o.id == offer_id), None)


def _read(name: str) -> dict:
    return yaml.safe_load((CATALOG_DIR / name).read_text())


@cache
def load() -> Catalog:
    merged: dict = {}
    for name in ("gpus.yaml", "offers.yaml", "licences.yaml", "model_families.yaml", "api_prices.yaml"):
        merged.update(_read(name))
    return Catalog.model_validate(merged)
