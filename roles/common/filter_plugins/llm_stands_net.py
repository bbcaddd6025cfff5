"""Small network filters for the common role (stdlib only, so no ansible.utils is needed)."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


def _network(cidr):
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError as exc:
        raise AnsibleFilterError(f"not a CIDR: {cidr!r}: {exc}") from exc


def llm_stands_cidr_normalize(cidr):
    """'10.0.0.5/24' -> '10.0.0.0/24' (nftables rejects host bits in a prefix)."""
    return str(_network(cidr))


def llm_stands_cidr_family(cidr):
    """'ip' for IPv4 CIDRs, 'ip6' for IPv6 ones (the nftables address family keyword)."""
    return "ip6" if _network(cidr).version == 6 else "ip"


def llm_stands_cidrs_of_family(cidrs, family):
    """The normalized CIDRs of one family ('ip' or 'ip6')."""
    return [str(_network(c)) for c in cidrs if llm_stands_cidr_family(c) == family]


def llm_stands_address_in_cidrs(address, cidrs):
    """True when the address lies in one of the CIDRs."""
    try:
        addr = ipaddress.ip_address(str(address).strip())
    except ValueError as exc:
        raise AnsibleFilterError(f"not an IP address: {address!r}") from exc
    return any(addr in _network(c) for c in cidrs if _network(c).version == addr.version)


class FilterModule:
    def filters(self):
        return {
            "llm_stands_cidr_normalize": llm_stands_cidr_normalize,
            "llm_stands_cidr_family": llm_stands_cidr_family,
            "llm_stands_cidrs_of_family": llm_stands_cidrs_of_family,
            "llm_stands_address_in_cidrs": llm_stands_address_in_cidrs,
        }
