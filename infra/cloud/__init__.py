"""The Pulumi program of a stand (``pulumi up``, entry ``__main__.py``) and its offline plan (``plan.py``).

One ComponentResource per concern: network, security, hosts, storage, onprem, managed Kubernetes
and its workloads. The Yandex SDK is imported by ``yandex_sdk`` only.
"""
