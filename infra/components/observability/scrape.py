"""The managed scraper's configuration: what Amazon Managed Service for Prometheus collects.

Three jobs, each narrowed to what the rules and dashboards read (samples are what AMP bills):

- `agent`: the service's API and worker pods, on their container port named `metrics` (a port
  of its own: the ALB and the Service only reach port 8000);
- `kube-state-metrics`: the pinned chart's pod (honouring its `namespace`/`pod` labels, which
  name the objects it reports on);
- `cadvisor`: each node's kubelet cAdvisor endpoint through the API server's node proxy,
  keeping the CPU and memory series.

AMP's limits for managed collectors: only Kubernetes service discovery, an interval of at least
30 s, the Kubernetes API as the only resolvable name, Bearer auth only from the service account
token file. Every sample carries `cluster` (external label) so a shared workspace keeps stacks
apart.
"""

from __future__ import annotations

from typing import Any

import yaml

from infra.components.workload.pods import APP_NAME

SCRAPE_INTERVAL = "30s"  # AMP's minimum for managed collectors
METRICS_PORT_NAME = "metrics"
KSM_PORT_NAME = "http"
KSM_APP = "kube-state-metrics"
TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path
CADVISOR_METRICS = (
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
)


def _keep(labels: list[str], regex: str) -> dict[str, Any]:
    return {"source_labels": labels, "regex": regex, "action": "keep"}


def _copy(label: str, target: str) -> dict[str, Any]:
    return {"source_labels": [label], "target_label": target}


def scrape_config(cluster_name: str, namespace: str, ksm_namespace: str) -> dict[str, Any]:
    """The Prometheus configuration the scraper runs (as a dict)."""
    pod_labels = "__meta_kubernetes_pod_label_app_kubernetes_io_name"
    port_name = "__meta_kubernetes_pod_container_port_name"
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "external_labels": {"cluster": cluster_name},
        },
        "scrape_configs": [
            {
                "job_name": "agent",
                "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
                "relabel_configs": [
                    _keep([pod_labels, port_name], f"{APP_NAME};{METRICS_PORT_NAME}"),
                    _keep(["__meta_kubernetes_pod_phase"], "Running"),
                    _copy("__meta_kubernetes_namespace", "namespace"),
                    _copy("__meta_kubernetes_pod_name", "pod"),
                    _copy("__meta_kubernetes_pod_label_app_kubernetes_io_component", "component"),
                ],
            },
            {
                "job_name": "kube-state-metrics",
                "honor_labels": True,
                "kubernetes_sd_configs": [
                    {"role": "pod", "namespaces": {"names": [ksm_namespace]}}
                ],
                "relabel_configs": [
                    _keep([pod_labels, port_name], f"{KSM_APP};{KSM_PORT_NAME}"),
                ],
            },
            {
                "job_name": "cadvisor",
                "scheme": "https",
                "authorization": {"type": "Bearer", "credentials_file": TOKEN_FILE},
                "kubernetes_sd_configs": [{"role": "node"}],
                "relabel_configs": [
                    {"replacement": "kubernetes.default.svc:443", "target_label": "__address__"},
                    {
                        "source_labels": ["__meta_kubernetes_node_name"],
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                        "replacement": "/api/v1/nodes/$1/proxy/metrics/cadvisor",
                    },
                    _copy("__meta_kubernetes_node_name", "node"),
                ],
                "metric_relabel_configs": [_keep(["__name__"], "|".join(CADVISOR_METRICS))],
            },
        ],
    }


def scrape_config_yaml(cluster_name: str, namespace: str, ksm_namespace: str) -> str:
    """The configuration as the scraper takes it (YAML text; the provider base64-encodes it)."""
    return yaml.safe_dump(
        scrape_config(cluster_name, namespace, ksm_namespace), sort_keys=False, width=100
    )
