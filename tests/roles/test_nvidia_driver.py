"""roles/nvidia_driver: its decisions, made by the real role on real nspawn hosts.

No GPU exists here, so the hardware the role sees is injected as test inputs (lspci output, the
loaded driver, the OS), which the role accepts only in plan-only mode. The no-GPU case runs the
role for real (detection through sysfs, no test inputs). The install itself (packages, DKMS,
reboot, nvidia-smi) needs a GPU machine and is not tested here.
"""

from __future__ import annotations

import fcntl
import glob
import importlib.util
import tempfile
from pathlib import Path

import pytest
import yaml

from infra.config.loader import REPO_ROOT
from infra.driver.playbook import ansible_env

ROLE = REPO_ROOT / "roles" / "nvidia_driver"
NON_NVIDIA = "0000:00:1f.0 ISA bridge [0601]: Intel Corporation C620 Series LPC Controller [8086:a1c3] (rev 09)"
A100 = "0000:07:00.0 3D controller [0302]: NVIDIA Corporation GA100 [A100 SXM4 80GB] [10de:20b2] (rev a1)"
L40S = "0000:{:02x}:00.0 3D controller [0302]: NVIDIA Corporation AD102GL [L40S] [10de:26b9] (rev a1)"
H100 = "0000:{:02x}:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2330] (rev a1)"
NVSWITCH = "0000:{:02x}:00.0 Bridge [0680]: NVIDIA Corporation GH100 [H100 NVSwitch] [10de:22a3] (rev a1)"


def lines(*items: str) -> str:
    return "\n".join(items) + "\n"


HGX_H100 = lines(NON_NVIDIA, *(H100.format(0x18 + i) for i in range(8)), *(NVSWITCH.format(0x05 + i) for i in range(4)))
FOUR_L40S = lines(*(L40S.format(0x41 + i) for i in range(4)))

# host name -> (address, test inputs); one scenario per host, all in one playbook run.
SCENARIOS = {
    "nv-nogpu": ("10.213.7.11", {}),
    "nv-a100": ("10.213.7.12", {"nvidia_driver_lspci_override": lines(NON_NVIDIA, A100),
                                "nvidia_driver_existing_override": "", "nvidia_driver_os_override": "ubuntu-22.04"}),
    "nv-hgx": ("10.213.7.13", {"nvidia_driver_lspci_override": HGX_H100, "nvidia_driver_existing_override": "",
                               "nvidia_driver_os_override": "ubuntu-24.04", "nvidia_driver_expected_gpus": 8}),
    "nv-v3i": ("10.213.7.14", {"nvidia_driver_lspci_override": lines(A100),
                               "nvidia_driver_existing_override": "535.104.05",
                               "nvidia_driver_os_override": "ubuntu-22.04",
                               "nvidia_driver_vendor_image_driver": "535"}),
    "nv-match": ("10.213.7.15", {"nvidia_driver_lspci_override": FOUR_L40S,
                                 "nvidia_driver_existing_override": "580.95.05",
                                 "nvidia_driver_os_override": "ubuntu-24.04"}),
    # The host's real OS (Debian 12): its archive has branch 535 only.
    "nv-debian": ("10.213.7.16", {"nvidia_driver_lspci_override": FOUR_L40S, "nvidia_driver_existing_override": ""}),
}


def machine_has_nvidia() -> bool:
    # nspawn hosts see this machine's PCI devices: on a GPU machine the no-GPU case cannot run.
    return any(Path(d, "vendor").read_text().strip() == "0x10de" for d in glob.glob("/sys/bus/pci/devices/*"))


def run_role(tmp: Path, key_path: Path, hostvars: dict[str, dict], extravars: dict | None = None,
             play: list | None = None) -> dict:
    """Run the role (or ``play``); returns {"plans": {host: plan}, "stats": {...}, "failures": {host: msg}}."""
    import ansible_runner

    inventory = {"all": {"vars": {
        "ansible_user": "root", "ansible_ssh_private_key_file": str(key_path),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }, "hosts": hostvars}}
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(yaml.safe_dump(play or [{"hosts": "all", "gather_facts": True,
                                                           "roles": [{"role": "nvidia_driver"}]}]))
    (tmp / "runner").mkdir(exist_ok=True)
    plans, failures, stats = {}, {}, {}

    def on_event(event: dict) -> bool:
        data = event.get("event_data", {})
        res = data.get("res", {})
        if event.get("event") == "runner_on_ok" and "nvidia_driver_plan" in res.get("ansible_facts", {}):
            plans[data["host"]] = res["ansible_facts"]["nvidia_driver_plan"]
        elif event.get("event") == "runner_on_failed":
            failures[data["host"]] = res.get("msg", "")
        elif event.get("event") == "playbook_on_stats":
            stats.update({k: data.get(k) or {} for k in ("changed", "ok", "failures")})
        return True

    result = ansible_runner.run(
        private_data_dir=str(tmp / "runner"), playbook=str(tmp / "play.yml"), inventory=str(tmp / "inventory.yml"),
        extravars=extravars or {}, event_handler=on_event, quiet=True, timeout=600,
        envvars={"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
                 **ansible_env()},
    )
    return {"plans": plans, "failures": failures, "stats": stats, "rc": result.rc}


# Own network and state dir (the brief's llmstn, 10.213.7.0/24), so these tests run next to other
# host tests. No apt proxy: nothing here installs packages. Leftovers of a crashed session are
# removed at its start, everything at its end.
NETWORK = ("llmstn", "10.213.7.0/24")
STATE_DIR = Path(tempfile.gettempdir()) / "llm-stands-test-roles-llmstn"


@pytest.fixture(scope="module")
def role_hosts():
    """Callable: {name: address} -> hosts up (in parallel, idempotent); .key_path."""
    from infra.local.hosts import HostSpec, LocalHosts, LocalNetwork
    from infra.local.testing import missing_prerequisites

    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    lock = open(STATE_DIR / ".session.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one session per network at a time
    hosts = LocalHosts(LocalNetwork(*NETWORK), STATE_DIR,
                       progress=lambda msg: print(f"[nvidia-hosts] {msg}", flush=True))

    class Factory:
        key_path, public_key = hosts.ssh_keypair()

        def __call__(self, specs: dict[str, str]) -> None:
            hosts.up([HostSpec(n, a) for n, a in specs.items()], self.public_key, apt_proxy=False)

    try:
        hosts.down()
        yield Factory()
    finally:
        hosts.down()
        lock.close()


@pytest.fixture(scope="module")
def planned(role_hosts, tmp_path_factory):
    role_hosts({name: address for name, (address, _) in SCENARIOS.items()})
    hostvars = {}
    for name, (address, inputs) in SCENARIOS.items():
        # Test inputs are accepted only in plan-only mode; the no-GPU host runs the role for real.
        hostvars[name] = {"ansible_host": address, **inputs, "nvidia_driver_plan_only": bool(inputs)}
    return run_role(tmp_path_factory.mktemp("nvidia"), role_hosts.key_path, hostvars)


@pytest.mark.hosts
def test_every_host_planned_and_nothing_changed(planned):
    assert planned["rc"] == 0, planned["failures"]
    assert set(planned["plans"]) == set(SCENARIOS)
    assert set(planned["stats"]["ok"]) == set(SCENARIOS)  # the recap was captured for every host
    assert all(planned["stats"]["changed"].get(h, 0) == 0 for h in SCENARIOS), planned["stats"]


@pytest.mark.hosts
def test_no_gpu_is_skipped_cleanly_without_test_inputs(planned):
    if machine_has_nvidia():
        pytest.skip("this machine has an NVIDIA GPU: the role would install for real")
    plan = planned["plans"]["nv-nogpu"]
    assert plan["action"] == "skip"
    assert plan["gpu_count"] == 0 and plan["overridden"] == []
    assert plan["detected_by"] in ("sysfs", "lspci")
    assert plan["os"] == "debian-12"  # the host's real OS, from its facts
    assert plan["packages"] == [] and not plan["fabricmanager"]


@pytest.mark.hosts
def test_a100_on_ubuntu_2204_installs_the_580_server_branch_from_the_archive(planned):
    plan = planned["plans"]["nv-a100"]
    assert plan["gpu_count"] == 1 and plan["gpus"][0]["model"] == "A100-SXM4-80GB"  # the Intel line is ignored
    assert plan["arch"] == "ampere" and plan["os"] == "ubuntu-22.04"
    assert (plan["action"], plan["branch"], plan["source"]) == ("install", "580", "distro")
    assert plan["packages"] == ["nvidia-driver-580-server", "nvidia-utils-580-server"]
    assert plan["open_kernel_modules"] is False
    assert plan["fabricmanager"] is False and plan["persistence_mode"] is True


@pytest.mark.hosts
def test_hgx_h100_with_nvswitch_gets_fabric_manager_and_open_modules(planned):
    plan = planned["plans"]["nv-hgx"]
    assert (plan["gpu_count"], plan["nvswitch_count"], plan["arch"]) == (8, 4, "hopper")
    assert plan["action"] == "install" and plan["problems"] == []
    assert plan["fabricmanager"] is True
    assert plan["fabricmanager_packages"] == ["nvidia-fabricmanager-580"]
    assert plan["packages"] == ["nvidia-driver-580-server-open", "nvidia-utils-580-server"]


@pytest.mark.hosts
def test_yandex_v3i_vendor_image_keeps_driver_535(planned):
    plan = planned["plans"]["nv-v3i"]
    assert plan["action"] == "keep"
    assert plan["branch"] == "535" and plan["existing_driver"] == "535.104.05"
    assert plan["packages"] == [] and plan["source"] == "none"
    assert "cannot be changed" in plan["reason"]


@pytest.mark.hosts
def test_matching_driver_means_nothing_to_do(planned):
    plan = planned["plans"]["nv-match"]
    assert (plan["action"], plan["branch"], plan["gpu_count"], plan["arch"]) == ("none", "580", 4, "ada")
    assert plan["packages"] == [] and plan["fabricmanager_packages"] == []


@pytest.mark.hosts
def test_debian_12_takes_a_branch_its_archive_lacks_from_nvidias_repository(planned):
    plan = planned["plans"]["nv-debian"]
    assert plan["os"] == "debian-12"
    assert (plan["action"], plan["source"], plan["packages"]) == ("install", "cuda", ["cuda-drivers-580"])


@pytest.mark.hosts
def test_test_inputs_are_refused_outside_plan_only(planned, role_hosts, tmp_path):
    address, inputs = SCENARIOS["nv-a100"]
    result = run_role(tmp_path, role_hosts.key_path, {"nv-a100": {"ansible_host": address, **inputs}})
    assert result["rc"] != 0
    assert "accepted only with nvidia_driver_plan_only" in result["failures"]["nv-a100"]
    assert result["plans"] == {}  # refused before detection
    assert result["stats"]["changed"].get("nv-a100", 0) == 0


FAKE_SMI = """#!/bin/sh
# nvidia-smi of a 4 x L40S host with driver 580, for the role's configure/verify steps.
case "$*" in
  *-pm*) echo "Persistence mode is already Enabled for GPU 00000000:41:00.0." ;;
  *--query-gpu*) for i in $(seq 0 $(( $(cat /etc/fake-gpus) - 1 ))); do echo "$i, NVIDIA L40S, 580.95.05, Enabled"; done ;;
esac
"""


@pytest.mark.hosts
@pytest.mark.parametrize("gpus_seen", [4, 3])
def test_configure_and_verify_read_nvidia_smi(role_hosts, tmp_path, gpus_seen):
    """The steps after the plan, against a stand-in nvidia-smi (no GPU here): persistence mode
    without a nvidia-persistenced unit, and the verification of the GPUs nvidia-smi reports."""
    import shlex

    role_hosts({"nv-verify": "10.213.7.17"})
    setup = (f"printf %s {shlex.quote(FAKE_SMI)} > /usr/local/bin/nvidia-smi && chmod 755 /usr/local/bin/nvidia-smi"
             f" && echo {gpus_seen} > /etc/fake-gpus")
    plan = {"action": "none", "branch": "580", "gpu_count": 4, "persistence_mode": True, "fabricmanager": False,
            "fabricmanager_packages": [], "source": "none", "os": "debian-12"}
    play = [{"hosts": "all", "gather_facts": False, "tasks": [
        {"ansible.builtin.shell": setup, "changed_when": False},
        {"ansible.builtin.set_fact": {"nvidia_driver_plan": plan}},
        {"ansible.builtin.include_role": {"name": "nvidia_driver", "tasks_from": "configure.yml"}},
    ]}]
    result = run_role(tmp_path, role_hosts.key_path, {"nv-verify": {"ansible_host": "10.213.7.17"}}, play=play)
    if gpus_seen == 4:
        assert result["rc"] == 0, result["failures"]
        assert result["stats"]["changed"].get("nv-verify", 0) == 0  # persistence mode was already on
    else:
        assert result["rc"] != 0
        assert "planned 4 GPUs on branch 580" in result["failures"]["nv-verify"]


# -- the decision function alone (no host) ------------------------------------------------------------


def _module():
    spec = importlib.util.spec_from_file_location("nvidia_driver_plan", ROLE / "library" / "nvidia_driver_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(**overrides) -> dict:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    pci_ids = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_nvidia_driver_pci_ids"]
    p = {"expected_gpus": None, "expected_arch": None, "pci_ids": pci_ids, "extra_pci_ids": {},
         "branches": defaults["nvidia_driver_branches"], "branch": None,
         "distribution_branches": defaults["nvidia_driver_distribution_branches"],
         "open_kernel_modules_arches": defaults["nvidia_driver_open_kernel_modules_arches"],
         "source": "auto", "offline_repo_url": "", "offline_deb_dir": "", "vendor_image_driver": None,
         "replace_existing": False, "fabricmanager": None, "persistence_mode": True}
    return p | overrides


def _decide(lspci: str, driver: str | None = None, os_key: str = "ubuntu-22.04", **params) -> dict:
    m = _module()
    v = m.parse_version(driver)
    return m.decide(_params(**params), m.parse_lspci(lspci), {"loaded": v, "smi": v, "installed": v}, os_key, "test")


def test_parse_proc_driver_version():
    m = _module()
    assert m.parse_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023") == "535.104.05"
    assert m.parse_version("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build") == "580.95.05"
    assert m.parse_version("") is None


def test_model_gpu_count_mismatch_is_a_problem():
    plan = _decide(lines(A100), expected_gpus=4)
    assert plan["problems"] == ["the stand model says 4 GPUs, test shows 1"]


def test_model_without_gpu_skips_even_when_a_gpu_is_present():
    plan = _decide(lines(A100), expected_gpus=0)
    assert plan["action"] == "skip" and plan["gpu_count"] == 1


def test_other_existing_branch_is_kept_unless_replacing_is_allowed():
    kept = _decide(lines(A100), "550.54.15")
    assert (kept["action"], kept["branch"]) == ("keep", "550")
    replaced = _decide(lines(A100), "550.54.15", replace_existing=True)
    assert (replaced["action"], replaced["branch"]) == ("install", "580")


def test_vendor_image_without_driver_fails_and_fabric_manager_matches_the_kept_driver():
    assert _decide(lines(A100), None, vendor_image_driver="535")["action"] == "fail"
    plan = _decide(HGX_H100.replace("2330", "20b2"), "535.104.05", vendor_image_driver="535")
    assert plan["action"] == "keep" and plan["fabricmanager_packages"] == ["nvidia-fabricmanager-535=535.104.05*"]


def test_sources_offline_and_debian_with_nvswitch():
    offline = _decide(lines(A100), offline_repo_url="http://10.0.0.1/nvidia/")
    assert (offline["source"], offline["packages"]) == ("offline", ["cuda-drivers-580"])
    debian_hgx = _decide(HGX_H100, None, "debian-12", branch="535")
    assert debian_hgx["source"] == "cuda"  # Debian has the 535 driver but no Fabric Manager
    assert debian_hgx["packages"] == ["nvidia-open-535"]


def test_unknown_device_uses_the_models_arch_and_unsupported_os_fails():
    unknown = "0000:07:00.0 3D controller [0302]: NVIDIA Corporation Device [10de:9999] (rev a1)"
    assert _decide(lines(unknown), expected_arch="volta", branches={"volta": "535", "unknown": "580"})["branch"] == "535"
    assert _decide(lines(A100), os_key="centos-9")["action"] == "fail"


def test_defaults_and_argument_specs_agree():
    defaults = set(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))
    specs = set(yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"])
    assert defaults == specs  # every default is documented in the spec, and vice versa
