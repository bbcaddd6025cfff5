"""Offline stand-ins for the clouds: echo every input back, fabricate ids, addresses and keys.

Deterministic (derived from resource names), so two runs of the same stand give the same plan.
Fabricated public addresses come from 198.18.0.0/15 (reserved for benchmarks): never a real host.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Address

import pulumi

FAKE_NET = int(IPv4Address("198.18.0.0"))
# How a secret value looks on the wire (pulumi.runtime.rpc's envelope).
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


@dataclass(frozen=True)
class MockedResource:
    type: str  # the Pulumi type token, e.g. yandex:index/computeInstance:ComputeInstance
    name: str
    id: str
    inputs: dict  # as the program passed them (camelCase keys)
    state: dict  # inputs plus what the mock fabricated
    custom: bool  # False for ComponentResources
    provider: str | None
    secret_inputs: frozenset[str] = frozenset()  # dotted paths of inputs that arrived as secrets


def fake_id(*parts: str) -> str:
    return "mock-" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]


def fake_ip(*parts: str) -> str:
    n = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16) % (2 ** 17 - 2)
    return str(IPv4Address(FAKE_NET + n + 1))


class StandMocks(pulumi.runtime.Mocks):
    """Mocks for every provider the program uses (inputs and outputs use Pulumi's camelCase names)."""

    def __init__(self, stack_outputs: dict[str, dict] | None = None):
        # StackReference name -> outputs to return; unknown stacks get a fabricated gateway endpoint.
        self.stack_outputs = stack_outputs or {}
        self.created: list[MockedResource] = []  # every registration, in order

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        secret_inputs: set[str] = set()
        inputs = _plain(args.inputs, "", secret_inputs)
        state = dict(inputs)
        name, typ = args.name, args.typ
        if typ == "pulumi:pulumi:StackReference":
            outputs = self.stack_outputs.get(name, {"gateway_endpoint": f"https://{fake_ip(name)}"})
            state.update(outputs=outputs, secretOutputNames=[])
        elif typ in _FABRICATE:
            _FABRICATE[typ](name, state)
        rid = args.resource_id or fake_id(typ, name)
        # Reads (StackReference) arrive without the custom flag; only components lack an id.
        custom = bool(args.custom) or bool(args.resource_id)
        self.created.append(MockedResource(typ, name, rid, inputs, state, custom, args.provider, frozenset(secret_inputs)))
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        result = dict(args.args)
        token = args.token
        key = result.get("family") or result.get("name") or result.get("nameRegex") or result.get("networkId") or ""
        result.setdefault("id", result.get("networkId") or fake_id(token, key))
        if token == "openstack:networking/getNetwork:getNetwork":
            result.setdefault("name", "external-network")
        if token == "openstack:images/getImage:getImage":
            result.setdefault("name", key)
        return result


def _plain(value, path: str, secrets: set[str]):
    """Inputs as the program wrote them: secrets unwrapped (their paths noted), whole numbers as ints
    (numbers cross the wire as floats)."""
    if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG:
        secrets.add(path)
        return _plain(value.get("value"), path, secrets)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def _service(name: str, state: dict) -> None:
    if (state.get("spec") or {}).get("type") == "LoadBalancer":
        state["status"] = {"loadBalancer": {"ingress": [{"ip": fake_ip(name)}]}}


def _k8s_master(name: str, state: dict) -> None:
    master = state.setdefault("master", {})
    master.setdefault("externalV4Endpoint", f"https://{fake_ip(name, 'api')}")
    master.setdefault("clusterCaCertificate", "-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----\n")


def _magnum(name: str, state: dict) -> None:
    api = f"https://{fake_ip(name, 'api')}:6443"
    state.setdefault("kubeconfig", {"raw_config": f"apiVersion: v1\nkind: Config\nclusters: [{{cluster: {{server: {api}}}}}]\n",
                                    "host": api})
    state.setdefault("apiAddress", api)


_FABRICATE = {
    "yandex:index/vpcAddress:VpcAddress": lambda n, s: s.setdefault("externalIpv4Address", {}).setdefault("address", fake_ip(n)),
    "yandex:index/iamServiceAccountStaticAccessKey:IamServiceAccountStaticAccessKey":
        lambda n, s: s.update(accessKey=fake_id("access", n), secretKey=fake_id("secret", n)),
    "yandex:index/kubernetesCluster:KubernetesCluster": _k8s_master,
    "openstack:networking/floatingIp:FloatingIp": lambda n, s: s.setdefault("address", fake_ip(n)),
    "openstack:identity/ec2CredentialV3:Ec2CredentialV3":
        lambda n, s: s.update(access=fake_id("access", n), secret=fake_id("secret", n)),
    "openstack:containerinfra/cluster:Cluster": _magnum,
    "kubernetes:core/v1:Service": _service,
    "tls:index/privateKey:PrivateKey": lambda n, s: s.setdefault("privateKeyPem", "-----BEGIN PRIVATE KEY-----\nMOCK\n"),
    "tls:index/selfSignedCert:SelfSignedCert": lambda n, s: s.setdefault("certPem", "-----BEGIN CERTIFICATE-----\nMOCK\n"),
    "random:index/randomPassword:RandomPassword": lambda n, s: s.setdefault("result", fake_id("password", n)),
}
