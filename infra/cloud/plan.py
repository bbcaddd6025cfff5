"""`stand plan STACK`: run the Pulumi program offline, under mocks, and list what it would create.

No cloud credentials, no Pulumi CLI, no provider plugins. Secrets are placeholders. Safe to call
many times in one process: each run starts from a fresh root stack, config and mock monitor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from inspect import isawaitable
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as _settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import PROJECT
from infra.cloud.mocks import MockedResource, StandMocks
from infra.cloud.secret_refs import PlaceholderSecrets
from infra.config.loader import load_stand, stack_path
from infra.config.model import Stand

# Provider settings a real stack file carries; an in-memory stand gets stand-ins.
PLACEHOLDER_CONFIG = {"yandex:folderId": "plan-folder", "yandex:cloudId": "plan-cloud"}


@dataclass(frozen=True)
class PlannedResource:
    type: str  # short: yandex:ComputeInstance, openstack:SecGroupRule, kubernetes:Deployment
    name: str
    props: dict[str, Any]  # what a reviewer checks: platform/flavor, gpus, disk_gb, public, ingress...
    token: str = ""  # the full Pulumi type token

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "token": self.token, **self.props}


@dataclass
class ProgramRun:
    """One offline run: every registered resource, and the resolved stack outputs."""

    stand: Stand
    resources: list[MockedResource]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)  # dotted paths: "mirror.secret_key"

    def of_type(self, suffix: str) -> list[MockedResource]:
        """Custom resources whose token ends with ``suffix`` (e.g. ":ComputeInstance")."""
        return [r for r in self.resources if r.custom and r.type.endswith(suffix)]


def run_program(stack_or_stand: str | Path | Stand, *, config: dict[str, Any] | None = None,
                stack_outputs: dict[str, dict] | None = None) -> ProgramRun:
    """Run the stand's program under mocks. ``config`` adds Pulumi config (``ns:key`` -> value);
    ``stack_outputs`` fakes the outputs of referenced stacks (``org/llm-stands/fallback`` -> {...})."""
    from infra.cloud.program import build
    from infra.cloud.settings import CloudSettings

    if isinstance(stack_or_stand, Stand):
        stand, file_config = stack_or_stand, {}
    else:
        stand = load_stand(stack_or_stand)
        file_config = yaml.safe_load(stack_path(stack_or_stand).read_text())["config"]
    mocks = StandMocks(stack_outputs)
    use_mocks(mocks, stand.stack, {**PLACEHOLDER_CONFIG, **file_config, **(config or {})})
    outputs: dict[str, Any] = {}
    secret_paths: set[str] = set()

    def program() -> None:
        built = build(stand, PlaceholderSecrets(), CloudSettings.from_config())
        outputs.update(_sync_await(_resolve(built, "", secret_paths)))

    _sync_await(run_pulumi_func(program))
    return ProgramRun(stand, list(mocks.created), outputs, secret_paths)


def plan(stack_or_stand: str | Path | Stand, **kwargs) -> list[PlannedResource]:
    """The resources the stack would create, with the properties a reviewer checks."""
    return _planned(run_program(stack_or_stand, **kwargs))


def plan_as_dict(stack_or_stand: str | Path | Stand, **kwargs) -> dict[str, Any]:
    """`stand plan --json`: the plan plus the stack outputs (secrets masked)."""
    run = run_program(stack_or_stand, **kwargs)
    return {"stack": run.stand.stack, "target": run.stand.target, "resources": [p.as_dict() for p in _planned(run)],
            "outputs": _mask(run.outputs, run.secret_outputs, "")}


def _planned(run: ProgramRun) -> list[PlannedResource]:
    # Registration order depends on the event loop; sorted, two plans of one stand compare equal.
    by_id = {r.id: r for r in run.resources}
    rows = [PlannedResource(_short(r.type), r.name, _props(r, run, by_id), r.type) for r in run.resources if r.custom]
    return sorted(rows, key=lambda p: (p.token.split(":")[0], p.type, p.name))


def render(planned: list[PlannedResource], title: str | None = None):
    """A rich Table of the plan, one row per resource."""
    from rich.table import Table

    caption = None if planned else "nothing to create: the stand's hosts exist (see the `hosts` output)"
    table = Table(title=title, caption=caption, show_lines=False)
    for column in ("type", "name", "platform / flavor", "GPUs", "disk GB", "public", "ingress", "details"):
        table.add_column(column, overflow="fold")
    shown = {"platform", "flavor", "gpus", "disk_gb", "public", "ingress"}
    for p in planned:
        props = p.props
        details = ", ".join(f"{k}={_fmt(v)}" for k, v in props.items() if k not in shown)
        table.add_row(p.type, p.name, props.get("platform") or props.get("flavor") or "",
                      _fmt(props.get("gpus", "")), _fmt(props.get("disk_gb", "")),
                      {True: "yes", False: "no"}.get(props.get("public"), ""),
                      "\n".join(props.get("ingress", [])), details)
    return table


# -- runtime ---------------------------------------------------------------------------------------

def use_mocks(mocks: pulumi.runtime.Mocks, stack: str, config: dict[str, Any] | None = None) -> None:
    """Point Pulumi's runtime at ``mocks`` for ``stack`` with ``config`` (``ns:key`` -> value).

    Pulumi keeps its runtime in module globals (root stack, config, pending RPCs, outputs): reset
    what a previous run or test left behind, so runs for several stacks can share one process.
    """
    config = config or {}
    _settings.ROOT.set(None)  # otherwise set_mocks reuses the previous run's root stack
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(_plain(v)) for k, v in config.items()},
                                  [])
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    _settings.SETTINGS.rpc_manager.clear()
    _settings.SETTINGS.outputs.clear()


def _plain(value):
    """Stack-file config as the CLI would pass it, with {secure: ...} leaves replaced (never decrypted here)."""
    if isinstance(value, dict):
        return "<secure>" if set(value) == {"secure"} else {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def _resolve(value, path: str, secret_paths: set[str]):
    if isinstance(value, pulumi.Output):
        if await value.is_secret():
            secret_paths.add(path)
        return await _resolve(await value.future(), path, secret_paths)
    if isawaitable(value):
        return await _resolve(await value, path, secret_paths)
    if isinstance(value, dict):
        return {k: await _resolve(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


def _mask(value, secret_paths: set[str], path: str):
    if path in secret_paths and value is not None:
        return "[secret]"
    if isinstance(value, dict):
        return {k: _mask(v, secret_paths, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secret_paths, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


# -- what a reviewer checks, per resource type ----------------------------------------------------------

def _short(token: str) -> str:
    if token.startswith("pulumi:providers:"):
        return "provider:" + token.removeprefix("pulumi:providers:")
    package, _, rest = token.partition(":")
    return f"{package}:{rest.rpartition(':')[2] or rest}"


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _rule(protocol: str, lo, hi, source: str) -> str:
    ports = "any" if protocol.upper() == "ANY" or (lo in (None, 0) and hi in (None, 65535)) else \
        str(lo) if lo == hi else f"{lo}-{hi}"
    return f"{protocol.lower()}/{ports} <- {source}"


def _props(r: MockedResource, run: ProgramRun, by_id: dict[str, MockedResource]) -> dict[str, Any]:
    i = r.inputs
    kind = _short(r.type).split(":")[1]
    if r.type.startswith("yandex:") and kind == "ComputeInstance":
        nic = (i.get("networkInterfaces") or [{}])[0]
        res = i.get("resources") or {}
        return {"platform": i.get("platformId"), "gpus": res.get("gpus") or 0, "cores": res.get("cores"),
                "memory_gb": res.get("memory"), "disk_gb": ((i.get("bootDisk") or {}).get("initializeParams") or {}).get("size"),
                "public": bool(nic.get("nat")), "address": nic.get("ipAddress"),
                "gpu_cluster": bool(i.get("gpuClusterId"))}
    if r.type == "openstack:compute/instance:Instance":
        port = by_id.get(((i.get("networks") or [{}])[0]).get("port", ""))
        fixed = ((port.inputs.get("fixedIps") or [{}])[0]).get("ipAddress") if port else None
        public = bool(port) and any(f.inputs.get("portId") == port.id for f in run.of_type(":FloatingIp"))
        volume = (i.get("blockDevices") or [{}])[0]
        return {"flavor": i.get("flavorName"), "gpus": int((i.get("metadata") or {}).get("gpus", 0)),
                "disk_gb": volume.get("volumeSize"), "public": public, "address": fixed}
    if kind == "VpcSecurityGroup":
        return {"ingress": [_rule(g["protocol"], g.get("fromPort"), g.get("toPort"),
                                  ",".join(g.get("v4CidrBlocks") or []) or g.get("predefinedTarget", ""))
                            for g in i.get("ingresses") or []]}
    if kind == "SecGroupRule" and i.get("direction") == "ingress":
        return {"ingress": [_rule(i.get("protocol") or "any", i.get("portRangeMin"), i.get("portRangeMax"),
                                  i.get("remoteIpPrefix") or i.get("remoteGroupId") or "")]}
    if kind == "StorageBucket":
        flags = i.get("anonymousAccessFlags") or {}
        return {"public": str(i.get("acl", "")).startswith("public") or any(flags.values()),
                "versioning": (i.get("versioning") or {}).get("enabled", False), "bucket": i.get("bucket")}
    if kind == "Container":
        return {"public": bool(i.get("containerRead")), "versioning": bool(i.get("versioning")), "bucket": i.get("name")}
    if kind == "KubernetesNodeGroup":
        tpl = i.get("instanceTemplate") or {}
        res = tpl.get("resources") or {}
        return {"platform": tpl.get("platformId"), "gpus": res.get("gpus") or 0,
                "disk_gb": (tpl.get("bootDisk") or {}).get("size"), "scale": i.get("scalePolicy"),
                "gpu_environment": (tpl.get("gpuSettings") or {}).get("gpuEnvironment")}
    if r.type == "openstack:containerinfra/nodeGroup:NodeGroup":
        return {"flavor": i.get("flavorId"), "disk_gb": i.get("dockerVolumeSize"),
                "scale": {"min": i.get("minNodeCount"), "max": i.get("maxNodeCount"), "initial": i.get("nodeCount")}}
    if kind == "Deployment":
        containers = (((i.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}]
        limits = (containers[0].get("resources") or {}).get("limits") or {}
        return {"gpus": limits.get("nvidia.com/gpu", 0), "replicas": (i.get("spec") or {}).get("replicas"),
                "image": containers[0].get("image")}
    if kind == "HorizontalPodAutoscaler":
        spec = i.get("spec") or {}
        metrics = [m.get("pods", {}).get("metric", {}).get("name") for m in spec.get("metrics") or []]
        return {"metric": metrics, "min": spec.get("minReplicas"), "max": spec.get("maxReplicas")}
    if kind == "Service":
        spec = i.get("spec") or {}
        public = spec.get("type") == "LoadBalancer"
        sources = ",".join(spec.get("loadBalancerSourceRanges") or []) or "0.0.0.0/0"
        return {"public": public,
                "ingress": [_rule("tcp", p.get("port"), p.get("port"), sources) for p in spec.get("ports") or []] if public else []}
    if kind == "Release":
        return {"chart": i.get("chart"), "version": i.get("version"), "repo": (i.get("repositoryOpts") or {}).get("repo")}
    if kind == "StackReference":
        return {"stack": i.get("name")}
    if kind == "VpcAddress":
        return {"public": True}
    if kind == "FloatingIp":
        return {"public": True}
    return {}
