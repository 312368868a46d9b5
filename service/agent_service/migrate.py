"""`python -m agent_service.migrate [REVISION]`: apply the Alembic migrations (default: head).

The platform's migration Job runs this before the API starts; the API never migrates
PostgreSQL itself (only the embedded SQLite default is migrated on start).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import ConfigError, Settings, load_settings
from .core.logging import configure_logging
from .storage.db import create_engine, transactional

# service/migrations next to the package: in a checkout and in the image (/app).
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    """Alembic configured in code, so no alembic.ini or working directory is needed."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision`."""
    await _run(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Downgrade the database behind `engine` to `revision` ("base" drops everything)."""
    await _run(engine, lambda cfg: command.downgrade(cfg, revision))


async def _run(engine: AsyncEngine, action: Callable[[Config], None]) -> None:
    cfg = alembic_config()
    async with transactional(engine).begin() as conn:

        def run(sync_conn: Connection) -> None:
            cfg.attributes["connection"] = sync_conn
            action(cfg)

        await conn.run_sync(run)


async def _main(settings: Settings, revision: str) -> None:
    engine = create_engine(settings)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_service.migrate",
        description="Apply the Alembic migrations to the database the environment names "
        "(DATABASE_URL, or DB_SECRET_ARN with DB_HOST).",
    )
    parser.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    revision = parser.parse_args(sys.argv[1:] if argv is None else argv).revision
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    asyncio.run(_main(settings, revision))
    print(f"migrations applied: {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
