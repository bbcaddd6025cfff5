"""Deployment settings the Stand model does not carry (cloud facts, chart sources), read from the
``llm-stands-cloud:`` config namespace so the loader (which owns ``llm-stands:``) lets them pass.

    pulumi config set -s prod llm-stands-cloud:organization my-org
    pulumi config set -s test llm-stands-cloud:externalNetworkId 1b2c...
    pulumi config set -s prod --secret llm-stands-cloud:fallbackKey ...
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

NAMESPACE = "llm-stands-cloud"


@dataclass(frozen=True)
class CloudSettings:
    organization: str  # owner of the fallback stack, for StackReference
    external_network_id: str | None  # OpenStack: the router's uplink; looked up (external=true) if unset
    vendor_image_family: str  # Yandex: the only image gpu-standard-v3i boots (driver fixed by the vendor)
    image_family: str  # Yandex: hosts.image when unset
    openstack_image_regex: str  # Selectel/VK: public image matched when hosts.image is unset
    magnum_image: str  # Magnum node image (Fedora CoreOS); clouds publish their own names
    gpu_operator_repo: str
    gpu_operator_version: str
    fallback_key: pulumi.Output[str] | None  # the key this gateway presents to the fallback stand's gateway

    @classmethod
    def from_config(cls) -> CloudSettings:
        cfg = pulumi.Config(NAMESPACE)
        return cls(
            # get_organization() is the backend's org ("organization" for self-managed backends).
            organization=cfg.get("organization") or pulumi.get_organization() or "organization",
            external_network_id=cfg.get("externalNetworkId"),
            # Confirm with `yc compute image list --folder-id standard-images`.
            vendor_image_family=cfg.get("vendorImageFamily") or "ubuntu-2004-lts-a100",
            image_family=cfg.get("imageFamily") or "ubuntu-2204-lts",
            openstack_image_regex=cfg.get("imageRegex") or r"^Ubuntu[ -]22\.04",
            magnum_image=cfg.get("magnumImage") or "fedora-coreos-40",
            gpu_operator_repo=cfg.get("gpuOperatorRepo") or "https://helm.ngc.nvidia.com/nvidia",
            gpu_operator_version=cfg.get("gpuOperatorVersion") or "v25.3.0",
            fallback_key=cfg.get_secret("fallbackKey"),
        )
