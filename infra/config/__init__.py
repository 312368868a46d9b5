"""Stack configuration: one typed object, read and validated once, before any resource exists.

- `spec`: how a key is declared (`key()`, checks, value types, `Section`).
- `sections`: every key, by section - the single definition of name, type, defaults per
  environment, what is allowed and what it does.
- `loader`: `load_config()` -> `StackConfig`, or a one-line `ConfigError`.
- `docs`: Pulumi.yaml's `config:` block and the README table, generated from the sections.
- `checks`: the value checks (pure functions) the sections use.
"""

from infra.config.loader import (
    KEYS,
    KEYS_BY_NAME,
    StackConfig,
    environment_of,
    load_config,
    sections,
)
from infra.config.sections import (
    CACHE_ENGINES,
    CacheConfig,
    ClusterConfig,
    DatabaseConfig,
    LoadBalancerConfig,
    NetworkConfig,
    OperationsConfig,
    RegistryConfig,
    SecretsConfig,
    StackSettings,
    WorkloadConfig,
)
from infra.config.spec import ENVIRONMENTS, NAMESPACE, REVIEW_STACK, ConfigError, Key

__all__ = [
    "CACHE_ENGINES",
    "ENVIRONMENTS",
    "KEYS",
    "KEYS_BY_NAME",
    "NAMESPACE",
    "REVIEW_STACK",
    "CacheConfig",
    "ClusterConfig",
    "ConfigError",
    "DatabaseConfig",
    "Key",
    "LoadBalancerConfig",
    "NetworkConfig",
    "OperationsConfig",
    "RegistryConfig",
    "SecretsConfig",
    "StackConfig",
    "StackSettings",
    "WorkloadConfig",
    "environment_of",
    "load_config",
    "sections",
]
