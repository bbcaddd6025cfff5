"""What runs in a stand's Kubernetes cluster: the NVIDIA GPU operator, vLLM with autoscaling, the gateway."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

WAITING_METRIC = "vllm:num_requests_waiting"
MODEL_DIR = "/models/model"


@dataclass(frozen=True)
class GpuOperatorArgs:
    repo: str
    version: str
    install_driver: bool  # False where the node image's (vendor) driver must stay


class GpuOperator(pulumi.ComponentResource):
    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:k8s:GpuOperator", name, None, opts)
        self.release = k8s.helm.v3.Release(
            name, name="gpu-operator", chart="gpu-operator", version=args.version,
            repository_opts={"repo": args.repo}, namespace="gpu-operator", create_namespace=True,
            values={"driver": {"enabled": args.install_driver}, "toolkit": {"enabled": True},
                    "dcgmExporter": {"enabled": True}},
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


@dataclass(frozen=True)
class ModelSync:
    """An s3:// model source, copied from the stand's mirror by an init container."""

    bucket: str
    prefix: str
    endpoint: str
    region: str
    access_key: pulumi.Input[str]
    secret_key: pulumi.Input[str]


@dataclass(frozen=True)
class EngineArgs:
    name: str
    namespace: pulumi.Input[str]
    image: str
    args: list[str]
    env: dict[str, str]  # infra.engine.environment
    port: int
    gpus: int  # per pod: the tensor-parallel size
    replicas: int
    max_replicas: int
    waiting_target: int
    api_key: pulumi.Input[str]
    model_cache_gb: int
    node_selector: dict[str, str]
    tolerations: list[dict]
    sync: ModelSync | None


class Engine(pulumi.ComponentResource):
    url: str  # in-cluster base URL of the OpenAI API

    def __init__(self, name: str, args: EngineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:k8s:Engine", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        meta = {"name": args.name, "namespace": args.namespace}
        app = {"app": args.name}
        secret_data = {"VLLM_API_KEY": args.api_key}
        if args.sync:
            secret_data |= {"AWS_ACCESS_KEY_ID": args.sync.access_key, "AWS_SECRET_ACCESS_KEY": args.sync.secret_key}
        secret = k8s.core.v1.Secret(args.name, metadata=meta, string_data=secret_data, opts=child)
        env_from = [{"secretRef": {"name": secret.metadata.name}}]
        volumes = [{"name": "models", "emptyDir": {"sizeLimit": f"{args.model_cache_gb}Gi"}},
                   # Tensor parallel workers talk through shared memory; the container default is 64 MB.
                   {"name": "shm", "emptyDir": {"medium": "Memory"}}]
        init = []
        if args.sync:
            s = args.sync
            init = [{"name": "fetch-model", "image": "amazon/aws-cli:2.22.35", "envFrom": env_from,
                     "env": [{"name": "AWS_DEFAULT_REGION", "value": s.region}],
                     "command": ["aws", "s3", "sync", f"s3://{s.bucket}/{s.prefix}", MODEL_DIR,
                                 "--endpoint-url", s.endpoint, "--only-show-errors"],
                     "volumeMounts": [{"name": "models", "mountPath": "/models"}]}]
        health = {"httpGet": {"path": "/health", "port": args.port}}
        container = {
            "name": "vllm", "image": args.image, "args": args.args, "envFrom": env_from,
            "env": [{"name": k, "value": v} for k, v in sorted(args.env.items())],
            "ports": [{"name": "http", "containerPort": args.port}],
            "resources": {"limits": {"nvidia.com/gpu": args.gpus}, "requests": {"nvidia.com/gpu": args.gpus}},
            # Loading weights and compiling takes minutes: the startup probe waits up to 20 min,
            # then readiness keeps traffic off a replica that stops answering.
            "startupProbe": {**health, "periodSeconds": 10, "failureThreshold": 120},
            "readinessProbe": {**health, "periodSeconds": 10, "failureThreshold": 3},
            "volumeMounts": [{"name": "models", "mountPath": "/models"}, {"name": "shm", "mountPath": "/dev/shm"}],
        }
        deployment = k8s.apps.v1.Deployment(
            args.name, metadata=meta,
            spec={"replicas": args.replicas, "selector": {"matchLabels": app},
                  "template": {"metadata": {"labels": app},
                               "spec": {"nodeSelector": args.node_selector, "tolerations": args.tolerations,
                                        "initContainers": init, "containers": [container], "volumes": volumes}}},
            # The HPA owns the replica count after creation.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["spec.replicas"]))
        k8s.core.v1.Service(args.name, metadata=meta,
                            spec={"selector": app, "ports": [{"name": "http", "port": args.port, "targetPort": args.port}]},
                            opts=child)
        # Needs prometheus-adapter (or another custom metrics API) serving vLLM's gauge per pod
        # under this name; without it the HPA reports "unable to get metric" and keeps the count.
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            args.name, metadata=meta,
            spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
                  "minReplicas": args.replicas, "maxReplicas": args.max_replicas,
                  "metrics": [{"type": "Pods", "pods": {"metric": {"name": WAITING_METRIC},
                                                        "target": {"type": "AverageValue",
                                                                   "averageValue": str(args.waiting_target)}}}]},
            opts=child)
        self.url = pulumi.Output.concat("http://", args.name, ".", args.namespace, ".svc:", str(args.port), "/v1")
        self.register_outputs({})


@dataclass(frozen=True)
class GatewayArgs:
    name: str
    namespace: pulumi.Input[str]
    image: str
    port: int
    public_port: int
    node_port: int
    public_cidrs: list[str]
    master_key: pulumi.Input[str]
    engine_key: pulumi.Input[str]
    fallback_key: pulumi.Input[str] | None
    config: pulumi.Input[str]  # LiteLLM config.yaml (JSON is YAML)


class Gateway(pulumi.ComponentResource):
    endpoint: pulumi.Output[str]

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-stands:k8s:Gateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        meta = {"name": args.name, "namespace": args.namespace}
        app = {"app": args.name}
        # The gateway terminates TLS itself: a network load balancer passes 443 through untouched.
        # Self-signed; replace with cert-manager or a CA-issued pair for public clients.
        key = tls.PrivateKey(args.name, algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        cert = tls.SelfSignedCert(args.name, private_key_pem=key.private_key_pem, validity_period_hours=24 * 365,
                                  subject={"common_name": args.name},
                                  allowed_uses=["key_encipherment", "digital_signature", "server_auth"], opts=child)
        tls_secret = k8s.core.v1.Secret(f"{args.name}-tls", type="kubernetes.io/tls",
                                        metadata={**meta, "name": f"{args.name}-tls"},
                                        string_data={"tls.crt": cert.cert_pem, "tls.key": key.private_key_pem},
                                        opts=child)
        keys = {"LITELLM_MASTER_KEY": args.master_key, "ENGINE_API_KEY": args.engine_key}
        if args.fallback_key is not None:
            keys["FALLBACK_API_KEY"] = args.fallback_key
        secret = k8s.core.v1.Secret(args.name, metadata=meta, string_data=keys, opts=child)
        config = k8s.core.v1.ConfigMap(args.name, metadata=meta, data={"config.yaml": args.config}, opts=child)
        probe = {"httpGet": {"path": "/health/liveliness", "port": args.port, "scheme": "HTTPS"}, "periodSeconds": 10}
        k8s.apps.v1.Deployment(
            args.name, metadata=meta,
            spec={"replicas": 2, "selector": {"matchLabels": app},
                  "template": {"metadata": {"labels": app}, "spec": {"containers": [{
                      "name": "litellm", "image": args.image,
                      "args": ["--config", "/etc/litellm/config.yaml", "--port", str(args.port),
                               "--ssl_keyfile_path", "/etc/litellm/tls/tls.key",
                               "--ssl_certfile_path", "/etc/litellm/tls/tls.crt"],
                      "envFrom": [{"secretRef": {"name": secret.metadata.name}}],
                      "env": [{"name": "LITELLM_LOCAL_MODEL_COST_MAP", "value": "True"}],
                      "ports": [{"name": "https", "containerPort": args.port}],
                      "readinessProbe": probe, "livenessProbe": {**probe, "failureThreshold": 6},
                      "volumeMounts": [{"name": "config", "mountPath": "/etc/litellm/config.yaml", "subPath": "config.yaml"},
                                       {"name": "tls", "mountPath": "/etc/litellm/tls", "readOnly": True}]}],
                      "volumes": [{"name": "config", "configMap": {"name": config.metadata.name}},
                                  {"name": "tls", "secret": {"secretName": tls_secret.metadata.name}}]}}},
            opts=child)
        service = k8s.core.v1.Service(
            args.name, metadata=meta,
            spec={"type": "LoadBalancer", "selector": app, "externalTrafficPolicy": "Local",
                  "loadBalancerSourceRanges": args.public_cidrs,
                  "ports": [{"name": "https", "port": args.public_port, "targetPort": args.port,
                             "nodePort": args.node_port}]},
            opts=child)
        self.endpoint = service.status.apply(_https_endpoint)
        self.register_outputs({"endpoint": self.endpoint})


def _https_endpoint(status) -> str | None:
    ingress = (status.load_balancer.ingress or []) if status and status.load_balancer else []
    if not ingress:
        return None
    return f"https://{ingress[0].ip or ingress[0].hostname}"


def litellm_config(served_name: str, engine_url: pulumi.Input[str], fallback_url: pulumi.Input[str] | None,
                   fallback_model: str | None) -> pulumi.Output[str]:
    """LiteLLM's config: the stand's engine under the served name, and the fallback stand behind it."""

    def render(urls: list) -> str:
        engine, fallback = urls
        models = [{"model_name": served_name,
                   "litellm_params": {"model": f"openai/{served_name}", "api_base": engine,
                                      "api_key": "os.environ/ENGINE_API_KEY"}}]
        router = {}
        if fallback:
            models.append({"model_name": f"{served_name}-fallback",
                           "litellm_params": {"model": f"openai/{fallback_model}", "api_base": f"{fallback}/v1",
                                              "api_key": "os.environ/FALLBACK_API_KEY"}})
            router = {"fallbacks": [{served_name: [f"{served_name}-fallback"]}]}
        return json.dumps({"model_list": models, "router_settings": router,
                           "litellm_settings": {"callbacks": ["prometheus"],
                                                "require_auth_for_metrics_endpoint": False},
                           "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}}, indent=2)

    return pulumi.Output.all(engine_url, fallback_url).apply(render)
