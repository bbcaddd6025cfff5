"""The one door to the Yandex Cloud Pulumi SDK.

Pulumi's own Yandex provider was archived in 2022; ``pulumi-yandex-marketmaker`` is a community
bridge of the official Terraform provider. Everything Yandex goes through the names below, so
swapping the SDK (e.g. for a bridge of the upstream Terraform provider) touches this file only.
Arguments are passed as plain dicts (snake_case keys), never as the SDK's *Args classes.
"""

from __future__ import annotations

import pulumi_yandex_marketmaker as _sdk

# Missing from the package's __init__: only importable from its submodule.
from pulumi_yandex_marketmaker.resourcemanager_folder_iam_member import ResourcemanagerFolderIamMember

ComputeGpuCluster = _sdk.ComputeGpuCluster
ComputeInstance = _sdk.ComputeInstance
IamServiceAccount = _sdk.IamServiceAccount
IamServiceAccountStaticAccessKey = _sdk.IamServiceAccountStaticAccessKey
KubernetesCluster = _sdk.KubernetesCluster
KubernetesNodeGroup = _sdk.KubernetesNodeGroup
StorageBucket = _sdk.StorageBucket
VpcAddress = _sdk.VpcAddress
VpcGateway = _sdk.VpcGateway
VpcNetwork = _sdk.VpcNetwork
VpcRouteTable = _sdk.VpcRouteTable
VpcSecurityGroup = _sdk.VpcSecurityGroup
VpcSubnet = _sdk.VpcSubnet
get_compute_image_output = _sdk.get_compute_image_output

# Public images (Ubuntu, the GPU vendor images) live in this folder of every Yandex cloud.
STANDARD_IMAGES_FOLDER = "standard-images"

__all__ = [
    "ComputeGpuCluster", "ComputeInstance", "IamServiceAccount", "IamServiceAccountStaticAccessKey",
    "KubernetesCluster", "KubernetesNodeGroup", "ResourcemanagerFolderIamMember", "STANDARD_IMAGES_FOLDER",
    "StorageBucket", "VpcAddress", "VpcGateway", "VpcNetwork", "VpcRouteTable", "VpcSecurityGroup",
    "VpcSubnet", "get_compute_image_output",
]
