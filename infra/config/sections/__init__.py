"""Every configuration key of the `agent-platform:` namespace, by section: the single definition.

Each field of a section is one key (see `infra.config.spec.key`): its Pulumi name, its default
per environment (dev, staging, prod; review stacks `pr-<n>` use dev), what it allows and what it
does. A section's validators are its rules across keys. `StackConfig` (infra.config.loader)
lists the sections in the order of the docs.
"""

from infra.config.sections.cluster import NODE_GROUP_MAX_SIZE, ClusterConfig, RegistryConfig
from infra.config.sections.data import CACHE_ENGINES, CacheConfig, DatabaseConfig
from infra.config.sections.edge import LoadBalancerConfig
from infra.config.sections.operations import OperationsConfig
from infra.config.sections.stack import NetworkConfig, StackSettings
from infra.config.sections.workload import SecretsConfig, WorkloadConfig

__all__ = [
    "CACHE_ENGINES",
    "NODE_GROUP_MAX_SIZE",
    "CacheConfig",
    "ClusterConfig",
    "DatabaseConfig",
    "LoadBalancerConfig",
    "NetworkConfig",
    "OperationsConfig",
    "RegistryConfig",
    "SecretsConfig",
    "StackSettings",
    "WorkloadConfig",
]
