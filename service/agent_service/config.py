"""Service settings: the environment contract with the platform, typed and validated in one place.

Each field reads the environment variable of the same name in upper case (PORT, DATABASE_URL,
REDIS_URL, MODEL_BACKEND, API_KEYS, ...). The README's "The agent service" section has the table
of variables and defaults; the defaults below are the source of truth.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .heartbeat import DEFAULT_FILE as DEFAULT_HEARTBEAT_FILE
from .readiness import DEFAULT_FILE as DEFAULT_READY_FILE

DEFAULT_MODEL_IDS = {
    "local": "local-echo-1",
    "openai": "gpt-4o-mini",
    "bedrock": "anthropic.claude-3-haiku-20240307-v1:0",
}


# DB_SSLMODE values that verify the server's certificate against DB_SSLROOTCERT.
VERIFYING_SSLMODES = ("verify-ca", "verify-full")


def _default_sqlite_path() -> str:
    # /tmp is the one writable place under a read-only root filesystem (an emptyDir in k8s).
    return str(Path(tempfile.gettempdir()) / "agent-service" / "agent.db")


class Settings(BaseSettings):
    """All configuration of the API, the worker and the migration command."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, protected_namespaces=()
    )

    port: int = Field(8000, ge=1, le=65535)
    # Prometheus metrics are served on this port only, never on PORT (which the load balancer
    # reaches); 0 disables them.
    metrics_port: int = Field(9090, ge=0, le=65535)
    host: str = "0.0.0.0"  # noqa: S104 - a container must listen on its pod IP
    agent_type: str = Field("conversational", min_length=1, max_length=64)
    max_concurrent_sessions: int = Field(100, ge=1, le=100_000)
    # Unset: the whole cap with one key in API_KEYS, half of it (rounded up) with several.
    max_sessions_per_key: int | None = Field(None, ge=1, le=100_000)
    session_idle_seconds: int = Field(1800, ge=1)
    session_lock_lease_seconds: float = Field(10.0, ge=0.1, le=300)
    # Ended sessions and their messages are deleted this long after they ended (0: never).
    session_retention_seconds: int = Field(30 * 86_400, ge=0)
    session_purge_interval_seconds: float = Field(600.0, gt=0)

    database_url: str | None = None
    sqlite_path: str = Field(default_factory=_default_sqlite_path)
    db_secret_arn: str | None = None
    db_host: str | None = None
    db_port: int = Field(5432, ge=1, le=65535)
    db_name: str = "agent"
    db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        "prefer"
    )
    # The CAs verify-ca / verify-full trust, as a PEM file (the image ships RDS's bundle).
    db_sslrootcert: str | None = None
    # A fixed pool: under load requests wait briefly for a connection instead of opening and
    # closing overflow connections (each a new PostgreSQL backend) over and over.
    db_pool_size: int = Field(20, ge=1, le=500)
    db_max_overflow: int = Field(0, ge=0, le=500)
    db_pool_timeout: float = Field(5.0, gt=0)
    db_connect_timeout: float = Field(5.0, gt=0)
    db_command_timeout: float = Field(10.0, gt=0)
    # Off: the pool drops connections the server closed without a round trip (storage/db.py).
    db_pool_pre_ping: bool = False
    aws_region: str | None = None

    redis_url: str | None = None
    redis_timeout: float = Field(1.0, gt=0)
    redis_max_connections: int = Field(64, ge=1, le=10_000)

    model_backend: Literal["local", "openai", "bedrock"] = "local"
    model_url: str | None = None
    model_api_key: SecretStr | None = None
    model_id: str | None = None
    model_timeout: float = Field(30.0, gt=0)
    model_max_retries: int = Field(2, ge=0, le=10)
    model_max_connections: int = Field(200, ge=1, le=10_000)
    model_max_tokens: int = Field(1024, ge=1, le=200_000)
    history_messages: int = Field(20, ge=0, le=1000)

    api_keys: SecretStr = SecretStr("")
    rate_limit: str = "100/minute"
    cache_ttl: int = Field(300, ge=0)
    max_request_bytes: int = Field(262_144, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # A task nobody works on for this long is handed out again: a dead worker's pending entry,
    # a running task whose lease lapsed (workers renew theirs), a queued one Redis lost.
    task_reclaim_idle_seconds: float = Field(60.0, gt=0)
    # How often each worker's reconciler looks in PostgreSQL for such tasks.
    task_reconcile_seconds: float = Field(15.0, gt=0)
    task_max_attempts: int = Field(3, ge=1, le=100)
    worker_concurrency: int = Field(8, ge=1, le=1000)
    # Touched by the worker loop; `python -m agent_service.heartbeat` is its liveness check.
    worker_heartbeat_file: str = DEFAULT_HEARTBEAT_FILE
    # Written when the worker consumes; `python -m agent_service.readiness` is its readiness check.
    worker_ready_file: str = DEFAULT_READY_FILE

    # HTTP connections: idle keep-alive (must stay above the load balancer's idle timeout, so
    # the balancer, not the pod, closes idle connections) and the time a client has to send a
    # request's headers (from its first byte) and its body (from the end of the headers).
    keep_alive_timeout_seconds: float = Field(65.0, gt=0, le=4000)
    request_header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    request_body_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    # A streamed chat sends an SSE comment after this long without an event (waiting for the
    # model's first token or the next one), so the load balancer never sees an idle stream.
    # Unset: 15 s, or a quarter of KEEP_ALIVE_TIMEOUT_SECONDS when that is shorter; 0: none.
    sse_keepalive_seconds: float | None = Field(None, ge=0, le=3600)

    shutdown_drain_seconds: float = Field(5.0, ge=0)
    shutdown_timeout_seconds: float = Field(20.0, ge=0)
    pod_name: str = Field(default_factory=lambda: os.environ.get("HOSTNAME") or "local")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_backend", mode="before")
    @classmethod
    def _lower_backend(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator(
        "database_url", "redis_url", "db_secret_arn", "db_sslrootcert", "model_url", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith(("postgres://", "postgresql://")):
            # The platform may hand over a plain libpq URL; the async driver is ours to choose.
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError(
                "must be a postgresql:// URL (leave it unset for the embedded SQLite database)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss:// (TLS)")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError("must look like '100/minute' (per second|minute|hour|day)") from None
        return value

    @property
    def resolved_model_id(self) -> str:
        """MODEL_ID, or the backend's default."""
        return self.model_id or DEFAULT_MODEL_IDS[self.model_backend]

    @property
    def api_key_list(self) -> list[str]:
        """The configured client keys (never logged)."""
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def session_quota(self) -> int:
        """Active sessions one API key may hold on this pod (MAX_SESSIONS_PER_KEY resolved)."""
        if self.max_sessions_per_key is not None:
            return self.max_sessions_per_key
        if len(self.api_key_list) <= 1:
            return self.max_concurrent_sessions
        return -(-self.max_concurrent_sessions // 2)

    @property
    def session_lock_max_hold_seconds(self) -> float:
        """The longest a chat can hold its session lock: every model attempt timing out, plus
        30 s to store the reply. Lease renewal stops there even if a turn leaked."""
        return self.model_timeout * (self.model_max_retries + 1) + 30

    @property
    def sse_keepalive_interval(self) -> float:
        """SSE_KEEPALIVE_SECONDS resolved: below the load balancer's idle timeout, which
        KEEP_ALIVE_TIMEOUT_SECONDS exceeds by a little (the platform: by 5 s)."""
        if self.sse_keepalive_seconds is not None:
            return self.sse_keepalive_seconds
        return min(15.0, self.keep_alive_timeout_seconds / 4)

    @property
    def embedded(self) -> bool:
        """True when no PostgreSQL is configured: the SQLite file is migrated on start."""
        return self.database_url is None and self.db_secret_arn is None

    def check_consistency(self) -> None:
        """Cross-field rules pydantic cannot express per field; raises ConfigError."""
        if self.metrics_port == self.port:
            raise ConfigError(
                f"METRICS_PORT={self.metrics_port}: must differ from PORT ({self.port}): "
                "metrics are never served on the public port (0 disables them)"
            )
        keepalive = self.sse_keepalive_interval
        if keepalive and keepalive >= self.keep_alive_timeout_seconds:
            raise ConfigError(
                f"SSE_KEEPALIVE_SECONDS={keepalive:g}: must be below KEEP_ALIVE_TIMEOUT_SECONDS "
                f"({self.keep_alive_timeout_seconds:g}), which exceeds the load balancer's idle "
                "timeout: a stream quiet for longer is cut (0 disables the comments)"
            )
        if self.db_secret_arn and not self.db_host:
            raise ConfigError("DB_HOST: required when DB_SECRET_ARN is set (the RDS endpoint)")
        quota = self.max_sessions_per_key
        if quota is not None and quota > self.max_concurrent_sessions:
            raise ConfigError(
                f"MAX_SESSIONS_PER_KEY={quota}: must be at most "
                f"MAX_CONCURRENT_SESSIONS ({self.max_concurrent_sessions})"
            )
        if self.db_secret_arn and self.db_sslmode in VERIFYING_SSLMODES:
            if not self.db_sslrootcert:
                raise ConfigError(
                    f"DB_SSLROOTCERT: required when DB_SSLMODE={self.db_sslmode} "
                    "(a PEM file of the CAs to trust, e.g. /app/certs/rds-global-bundle.pem)"
                )
            if not Path(self.db_sslrootcert).is_file():
                raise ConfigError(
                    f"DB_SSLROOTCERT={self.db_sslrootcert!r}: no such file "
                    "(a PEM file of the CAs to trust, e.g. /app/certs/rds-global-bundle.pem)"
                )
        if self.model_backend == "openai" and not self.model_url:
            raise ConfigError(
                "MODEL_URL: required when MODEL_BACKEND=openai "
                "(an OpenAI-compatible base URL such as https://api.openai.com/v1)"
            )


class ConfigError(Exception):
    """A configuration problem, phrased as one line naming the variable."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad variable: its name, the value given and what is allowed."""
    lines = []
    for err in exc.errors():
        name = str(err["loc"][0]).upper() if err["loc"] else "environment"
        given = err.get("input")
        shown = "" if name in {"API_KEYS", "MODEL_API_KEY"} else f"={given!r}"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"invalid environment: {name}{shown}: {message}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides); raise ConfigError with a clear message."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    settings.check_consistency()
    return settings
