"""The schema as SQLAlchemy Core tables (migrations in service/migrations mirror it)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite has no BIGINT autoincrement; INTEGER PRIMARY KEY is its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner", String(32), nullable=False, index=True),
    Column("agent_type", String(64), nullable=False),
    Column("user_id", String(128)),
    Column("meta", JSON),
    Column("created_by", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    # Exchanges stored so far: the fence a reply is stored against (storage/chat.py).
    Column("turns", Integer, nullable=False, server_default="0"),
    # The retention job's lookup of ended sessions; active ones are left out of the index.
    Index(
        None,
        "ended_at",
        postgresql_where=text("ended_at IS NOT NULL"),
        sqlite_where=text("ended_at IS NOT NULL"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "session_id",
        Uuid,
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "session_id", "id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner", String(32), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("priority", String(8), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("result", Text),
    Column("error", Text),
    Column("idempotency_key", String(255)),
    Column("request_hash", String(64)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("worker", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # Migration 0002 (expand): NULL in rows the previous release wrote; see its docstring.
    Column("queued_at", UTCDateTime),  # when it was last (re)queued; NULL: created_at
    Column("lease_expires_at", UTCDateTime),  # a running task's lease, renewed by its worker
    UniqueConstraint("owner", "idempotency_key"),
)
