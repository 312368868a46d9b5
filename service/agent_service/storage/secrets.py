"""Database credentials from an RDS-managed Secrets Manager secret, re-read after rotation."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password, even in a traceback
        return f"Credentials(username={self.username!r}, password='***')"


class SecretCredentials:
    """Reads `{"username", "password"}` from Secrets Manager through the pod's IAM role.

    The value is cached; `refresh(stale)` re-reads it once when a connection was refused with
    `stale`, and concurrent callers share that one read.
    """

    def __init__(self, secret_arn: str, region: str | None = None, client: Any = None) -> None:
        self._arn = secret_arn
        self._client = client or boto3.client(
            "secretsmanager",
            region_name=region,
            config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3}),
        )
        self._current: Credentials | None = None
        self._lock = asyncio.Lock()
        self.reads = 0

    def _read(self) -> Credentials:
        value = self._client.get_secret_value(SecretId=self._arn)["SecretString"]
        data = json.loads(value)
        return Credentials(username=data["username"], password=data["password"])

    async def _load(self) -> Credentials:
        # boto3 blocks: keep it off the event loop.
        creds = await asyncio.to_thread(self._read)
        self.reads += 1
        self._current = creds
        log.info("database credentials read from Secrets Manager", extra={"reads": self.reads})
        return creds

    async def get(self) -> Credentials:
        """The cached credentials, read on first use."""
        if self._current is not None:
            return self._current
        async with self._lock:
            return self._current or await self._load()

    async def refresh(self, stale: Credentials) -> Credentials:
        """Re-read the secret unless another caller already replaced `stale`."""
        async with self._lock:
            if self._current is not None and self._current != stale:
                return self._current
            log.warning("database authentication failed; re-reading the secret (rotation)")
            return await self._load()
