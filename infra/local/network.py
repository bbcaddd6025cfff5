"""Bridge, veth and network-namespace plumbing for local hosts.

Layout for one network (bridge BR, e.g. "llmst0" with 10.213.0.1/24):
    BR (bridge, gateway address, no forwarding)  <- host end of one veth per host
    netns "BR.HOST"  <- other end renamed eth0, static address, lo up, no default route
All names are derived from (bridge, host), so `down` can find leftovers of a crashed run even
without its state dir. net.ipv4.ip_forward is never touched: hosts reach only the bridge
address and each other.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from pathlib import Path

from infra.errors import StandError

from .system import CommandError, run


class NetworkError(StandError):
    """The stand's bridge or subnet clashes with what this machine already has."""

_BRIDGE_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,11}$")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
NETNS_DIR = Path("/run/netns")


def validate_bridge(bridge: str) -> None:
    # No '.' or '-' in bridge names: "BRIDGE.HOST" netns names must split unambiguously.
    if not _BRIDGE_RE.match(bridge):
        raise ValueError(f"bridge name {bridge!r}: use 1-12 letters, digits or '_', starting with a letter")


def validate_host(name: str) -> None:
    if not _HOST_RE.match(name):
        raise ValueError(f"host name {name!r}: use lowercase letters, digits and '-' (RFC 1123 label)")


def netns_name(bridge: str, host: str) -> str:
    return f"{bridge}.{host}"


def veth_name(bridge: str, host: str) -> str:
    """Host-side veth name: interface names are limited to 15 chars, so hash (bridge, host)."""
    digest = hashlib.sha1(f"{bridge}/{host}".encode()).hexdigest()[:10]
    return f"ls{digest}"


def gateway_interface(cidr: str) -> ipaddress.IPv4Interface:
    """The bridge address: first usable address of the network, e.g. 10.213.0.1/24."""
    net = ipaddress.IPv4Network(cidr, strict=True)
    return ipaddress.IPv4Interface(f"{next(net.hosts())}/{net.prefixlen}")


# -- queries ----------------------------------------------------------------------------------


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False, timeout=10).returncode == 0


def link_kind(name: str) -> str | None:
    res = run(["ip", "-j", "-d", "link", "show", "dev", name], check=False, timeout=10)
    if res.returncode != 0:
        return None
    info = json.loads(res.stdout)[0].get("linkinfo", {})
    return info.get("info_kind")


def netns_list() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def netns_of_bridge(bridge: str) -> list[str]:
    """Host names that have a namespace on this bridge (from names alone)."""
    prefix = f"{bridge}."
    return [n[len(prefix) :] for n in netns_list() if n.startswith(prefix)]


def links_on_bridge(bridge: str) -> list[str]:
    res = run(["ip", "-j", "link", "show", "master", bridge], check=False, timeout=10)
    if res.returncode != 0 or not res.stdout.strip():
        return []
    return [link["ifname"] for link in json.loads(res.stdout)]


def _addresses_in_use() -> list[tuple[str, ipaddress.IPv4Interface]]:
    res = run(["ip", "-j", "-4", "addr", "show"], timeout=10)
    found = []
    for link in json.loads(res.stdout):
        for addr in link.get("addr_info", []):
            found.append((link["ifname"], ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}")))
    return found


# -- bridge -----------------------------------------------------------------------------------


def bridge_up(bridge: str, cidr: str) -> None:
    """Create the bridge with the gateway address; refuse if the subnet is used elsewhere."""
    gw = gateway_interface(cidr)
    for ifname, iface in _addresses_in_use():
        if ifname != bridge and iface.network.overlaps(gw.network):
            raise NetworkError(f"{cidr} overlaps {iface} on {ifname}", f"pick another network.subnet_cidr for {bridge}")
    kind = link_kind(bridge)
    if kind is None:
        run(["ip", "link", "add", bridge, "type", "bridge"])
    elif kind != "bridge":
        raise NetworkError(f"{bridge} exists and is a {kind}, not a bridge", f"remove the {kind} {bridge}")
    current = [iface for ifname, iface in _addresses_in_use() if ifname == bridge]
    if gw not in current:
        if current:
            raise NetworkError(f"bridge {bridge} already has {current[0]}, not {gw}", "run stand down first")
        run(["ip", "addr", "add", str(gw), "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])


def bridge_down(bridge: str) -> None:
    if link_kind(bridge) == "bridge":
        run(["ip", "link", "del", bridge], timeout=30)


# -- per host ---------------------------------------------------------------------------------


def host_net_up(bridge: str, host: str, address: str, prefixlen: int) -> str:
    """Namespace + veth for one host; returns the netns name. Recreates partial leftovers."""
    ns, veth = netns_name(bridge, host), veth_name(bridge, host)
    host_net_down(bridge, host)
    run(["ip", "netns", "add", ns])
    # The peer is created directly inside the namespace, so "eth0" never clashes with ours.
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "link", "set", veth, "master", bridge])
    run(["ip", "link", "set", veth, "up"])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["ip", "-n", ns, "addr", "add", f"{address}/{prefixlen}", "dev", "eth0"])
    run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    return ns


def host_net_down(bridge: str, host: str) -> None:
    """Remove the veth (both ends) and the namespace; each step tolerates absence."""
    veth, ns = veth_name(bridge, host), netns_name(bridge, host)
    # Delete the veth explicitly: namespace teardown frees it only asynchronously.
    if link_exists(veth):
        run(["ip", "link", "del", veth], timeout=30)
    if (NETNS_DIR / ns).exists():
        try:
            run(["ip", "netns", "del", ns], timeout=30)
        except CommandError:
            # A stale mount point file without a namespace behind it.
            run(["umount", "-l", str(NETNS_DIR / ns)], check=False, timeout=10)
            (NETNS_DIR / ns).unlink(missing_ok=True)
