"""The mirror bucket: private, versioned, with its own key, exported as secrets."""

from __future__ import annotations


def test_mirror_bucket_is_private_and_versioned(run):
    for bucket in run.of_type(":StorageBucket"):  # Yandex
        i = bucket.inputs
        assert i["bucket"] == run.stand.mirror_bucket
        assert not str(i.get("acl", "")).startswith("public")
        assert not any(i["anonymousAccessFlags"].values())
        assert i["versioning"]["enabled"] is True
        # Access through a grant to the stand's own service account, not a folder-wide role.
        assert [g["permissions"] for g in i["grants"]] == [["READ", "WRITE"]]
    for container in run.of_type("/container:Container"):  # OpenStack
        i = container.inputs
        assert i["name"] == run.stand.mirror_bucket
        assert not i.get("containerRead") and not i.get("containerWrite")
        assert i["versioning"] is True
    buckets = run.of_type(":StorageBucket") + run.of_type("/container:Container")
    assert len(buckets) == (1 if run.stand.is_cloud else 0)


def test_mirror_keys_are_secret_outputs(run):
    mirror = run.outputs["mirror"]
    assert mirror["bucket"] == run.stand.mirror_bucket and mirror["endpoint"]
    if run.stand.is_cloud:
        assert mirror["access_key"] and mirror["secret_key"]
        assert {"mirror.access_key", "mirror.secret_key"} <= run.secret_outputs
    else:
        assert mirror["access_key"] is None and mirror["secret_key"] is None


def test_no_folder_wide_storage_role(run):
    roles = [m.inputs["role"] for m in run.of_type(":ResourcemanagerFolderIamMember")]
    assert not [r for r in roles if r.startswith("storage.")]
