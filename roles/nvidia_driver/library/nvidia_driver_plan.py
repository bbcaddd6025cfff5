#!/usr/bin/python
"""Detect NVIDIA GPUs, NVSwitches and an existing driver on the host, and decide what to do.

Read-only: it never changes the host (changed is always false). The decision is returned as the
host fact ``nvidia_driver_plan``; the role's tasks only carry it out. The decision itself is the
pure function ``decide()`` so it can be tested without a host.
"""

from __future__ import annotations

import glob
import os
import re
import shutil

DOCUMENTATION = r"""
module: nvidia_driver_plan
short_description: Detect NVIDIA hardware and driver state and plan the driver install (read-only)
description: See roles/nvidia_driver/defaults/main.yml for every option; the role passes them through.
options: {}
"""

NVIDIA_VENDOR = "10de"
GPU_CLASSES = ("0300", "0302")  # VGA compatible / 3D controller
NVSWITCH_CLASS = "0680"  # "Bridge: other": how NVSwitch chips enumerate
# "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05 ..." (open: "... Open Kernel Module for x86_64  570.86.15")
_VERSION = re.compile(r"\b(\d{3})\.(\d{1,3})(?:\.(\d{1,3}))?\b")
_LSPCI = re.compile(
    r"^(?P<slot>\S+)\s+(?P<kind>.*?)\s*\[(?P<cls>[0-9a-f]{4})\]:\s*(?P<name>.*?)\s*"
    r"\[(?P<vendor>[0-9a-f]{4}):(?P<device>[0-9a-f]{4})\]",
    re.IGNORECASE,
)


# -- detection (runs on the host) ---------------------------------------------------------------


def parse_lspci(text: str) -> list[dict]:
    """NVIDIA devices from `lspci -nn` output: slot, class, device id, name."""
    found = []
    for line in text.splitlines():
        m = _LSPCI.match(line.strip())
        if m and m["vendor"].lower() == NVIDIA_VENDOR:
            found.append({"slot": m["slot"], "class": m["cls"].lower(), "device_id": m["device"].lower(),
                          "name": m["name"]})
    return found


def read_pci(run) -> tuple[list[dict], str]:
    """(devices, how): lspci when installed, else sysfs, which every Linux host has."""
    if shutil.which("lspci"):
        rc, out, _ = run(["lspci", "-nn", "-D", "-d", f"{NVIDIA_VENDOR}:"])
        if rc == 0:
            return parse_lspci(out), "lspci"
    devices = []
    for dev in sorted(glob.glob("/sys/bus/pci/devices/*")):
        try:
            vendor = _read(f"{dev}/vendor").removeprefix("0x").lower()
            if vendor != NVIDIA_VENDOR:
                continue
            devices.append({"slot": os.path.basename(dev), "class": _read(f"{dev}/class").removeprefix("0x")[:4],
                            "device_id": _read(f"{dev}/device").removeprefix("0x").lower(), "name": ""})
        except OSError:
            continue
    return devices, "sysfs"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def parse_version(text: str | None) -> str | None:
    m = _VERSION.search(text or "")
    return m.group(0) if m else None


def read_driver(run) -> dict:
    """The loaded driver (kernel module), nvidia-smi's view, and an installed but unloaded module."""
    loaded = None
    for path in ("/proc/driver/nvidia/version", "/sys/module/nvidia/version"):
        try:
            loaded = parse_version(_read(path))
        except OSError:
            continue
        if loaded:
            break
    smi = None
    if shutil.which("nvidia-smi"):
        rc, out, _ = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        smi = parse_version(out) if rc == 0 else None
    installed = None
    if shutil.which("modinfo"):
        rc, out, _ = run(["modinfo", "-F", "version", "nvidia"])
        installed = parse_version(out) if rc == 0 else None
    return {"loaded": loaded, "smi": smi, "installed": installed}


# -- decision (pure) ----------------------------------------------------------------------------


def branch_of(version: str | None) -> str | None:
    return version.split(".")[0] if version else None


def decide(p: dict, devices: list[dict], driver: dict, os_key: str, detected_by: str) -> dict:
    """The plan: what was found, the branch, the source, the packages and the action.

    action: skip (no GPU, or the model gives the host none), none (the wanted driver is there),
    keep (a driver is there and must or may stay), install, fail (with reason).
    """
    pci_ids = {**p["pci_ids"], **p["extra_pci_ids"]}
    gpus, switches = [], []
    for d in devices:
        if d["class"] in GPU_CLASSES:
            known = pci_ids.get(d["device_id"], {})
            gpus.append({**d, "model": known.get("model", d["name"] or "unknown"),
                         "arch": known.get("arch", p["expected_arch"] or "unknown")})
        elif d["class"] == NVSWITCH_CLASS:
            switches.append(d)
    existing = driver.get("loaded") or driver.get("smi") or driver.get("installed")
    archs = sorted({g["arch"] for g in gpus})
    plan = {
        "detected_by": detected_by,
        "gpus": gpus,
        "gpu_count": len(gpus),
        "arch": archs[0] if len(archs) == 1 else ("mixed" if archs else None),
        "nvswitch_count": len(switches),
        "os": os_key,
        "existing_driver": existing,
        "existing_branch": branch_of(existing),
        "module_loaded": bool(driver.get("loaded")),
        "branch": None,
        "open_kernel_modules": False,
        "source": "none",
        "packages": [],
        "fabricmanager": False,
        "fabricmanager_packages": [],
        "persistence_mode": False,
        "action": "skip",
        "reason": "",
        "problems": [],
    }
    expected = p["expected_gpus"]
    if expected == 0:
        plan["reason"] = f"the stand model gives this host no GPU ({len(gpus)} NVIDIA GPUs seen): nothing to do"
        return plan
    if not gpus:
        plan["reason"] = f"no NVIDIA GPU found ({detected_by}): nothing to do"
        if expected:
            plan["problems"].append(f"the stand model says {expected} GPUs, {detected_by} shows none")
        return plan
    if expected and expected != len(gpus):
        plan["problems"].append(f"the stand model says {expected} GPUs, {detected_by} shows {len(gpus)}")
    if plan["arch"] == "mixed":
        plan["problems"].append("GPUs of different architectures on one host: set nvidia_driver_branch")

    distro = p["distribution_branches"]
    if os_key not in distro:
        plan.update(action="fail", reason=f"unsupported OS {os_key}: the role supports {', '.join(sorted(distro))}")
        return plan

    arch = plan["arch"] if plan["arch"] not in (None, "mixed") else "unknown"
    vendor_image = str(p["vendor_image_driver"] or "")
    if vendor_image:
        # Yandex gpu-standard-v3i: only the vendor image runs, its driver cannot be changed.
        branch = plan["existing_branch"] or vendor_image
    else:
        branch = str(p["branch"] or p["branches"].get(arch) or p["branches"]["unknown"])
    plan["branch"] = branch
    plan["open_kernel_modules"] = arch in p["open_kernel_modules_arches"]
    plan["fabricmanager"] = p["fabricmanager"] if p["fabricmanager"] is not None else bool(switches)
    plan["persistence_mode"] = bool(p["persistence_mode"])

    if vendor_image:
        if not existing:
            plan.update(action="fail", reason=f"this host is a vendor image with driver {vendor_image}, "
                                              "but no NVIDIA driver is installed: recreate it from the vendor image")
            return plan
        plan.update(action="keep", reason=f"vendor image: driver {existing} ships with it and cannot be changed")
        if plan["existing_branch"] != vendor_image:
            plan["problems"].append(f"vendor image should have driver {vendor_image}, has {existing}")
    elif existing and plan["existing_branch"] == branch:
        plan.update(action="none", reason=f"driver {existing} (branch {branch}) is already installed")
    elif existing and not p["replace_existing"]:
        plan.update(action="keep", reason=f"driver {existing} is installed, the map wants branch {branch}: kept "
                                          "(set nvidia_driver_replace_existing: true to switch)")
        plan["branch"] = plan["existing_branch"]
    else:
        plan.update(action="install", reason=(f"replace driver {existing} with branch {branch}" if existing
                                              else f"no driver installed: install branch {branch}"))

    eff = plan["branch"]
    plan["source"] = _source(p, os_key, eff, plan["fabricmanager"], installing=plan["action"] == "install") or "none"
    if plan["action"] == "install":
        plan["packages"] = _driver_packages(plan["source"], os_key, eff, plan["open_kernel_modules"])
    if plan["fabricmanager"]:
        fm = f"nvidia-fabricmanager-{eff}"
        if plan["action"] != "install" and existing:
            fm += f"={existing}*"  # Fabric Manager must match the running driver exactly
        plan["fabricmanager_packages"] = [fm]
    return plan


def _source(p: dict, os_key: str, branch: str, fabricmanager: bool, installing: bool) -> str | None:
    """Where packages come from; None when nothing is installed."""
    if not installing and not fabricmanager:
        return None
    if p["source"] != "auto":
        return p["source"]
    if p["offline_repo_url"] or p["offline_deb_dir"]:
        return "offline"
    in_distro = branch in [str(b) for b in p["distribution_branches"][os_key]]
    # Debian packages no Fabric Manager: NVSwitch machines on Debian need NVIDIA's repository.
    if in_distro and not (fabricmanager and os_key.startswith("debian")):
        return "distro"
    return "cuda"


def _driver_packages(source: str, os_key: str, branch: str, open_modules: bool) -> list[str]:
    if source == "distro" and os_key.startswith("ubuntu"):
        flavour = f"{branch}-server-open" if open_modules else f"{branch}-server"
        return [f"nvidia-driver-{flavour}", f"nvidia-utils-{branch}-server"]
    if source == "distro":  # Debian non-free: one branch per release, DKMS-built module
        return ["nvidia-driver", "nvidia-smi", "nvidia-persistenced", "firmware-misc-nonfree"]
    # NVIDIA's CUDA repository, or an offline flat repository holding its packages.
    return [f"nvidia-open-{branch}" if open_modules else f"cuda-drivers-{branch}"]


# -- module -------------------------------------------------------------------------------------

ARGS = dict(
    lspci_override=dict(type="str", default=None),
    existing_override=dict(type="str", default=None),
    os_override=dict(type="str", default=None),
    os_key=dict(type="str", required=True),
    expected_gpus=dict(type="int", default=None),
    expected_arch=dict(type="str", default=None),
    pci_ids=dict(type="dict", required=True),
    extra_pci_ids=dict(type="dict", default={}),
    branches=dict(type="dict", required=True),
    branch=dict(type="str", default=None),
    distribution_branches=dict(type="dict", required=True),
    open_kernel_modules_arches=dict(type="list", elements="str", default=[]),
    source=dict(type="str", default="auto", choices=["auto", "distro", "cuda", "offline"]),
    offline_repo_url=dict(type="str", default=""),
    offline_deb_dir=dict(type="str", default=""),
    vendor_image_driver=dict(type="str", default=None),
    replace_existing=dict(type="bool", default=False),
    fabricmanager=dict(type="bool", default=None),
    persistence_mode=dict(type="bool", default=True),
)


def main():
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=ARGS, supports_check_mode=True)
    p = dict(module.params)

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    if p["lspci_override"] is not None:
        devices, how = parse_lspci(p["lspci_override"]), "lspci (override)"
    else:
        devices, how = read_pci(run)
    if p["existing_override"] is not None:
        v = parse_version(p["existing_override"])
        driver = {"loaded": v, "smi": v, "installed": v}
    else:
        driver = read_driver(run)
    os_key = p["os_override"] or p["os_key"]
    plan = decide(p, devices, driver, os_key, how)
    plan["overridden"] = [k for k in ("lspci_override", "existing_override", "os_override") if p[k] is not None]
    module.exit_json(changed=False, plan=plan)


if __name__ == "__main__":
    main()
