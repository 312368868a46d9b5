"""API key check: keys are kept only as SHA-256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac


class ApiKeys:
    """The configured keys; `identify` maps a presented key to a stable, non-secret owner id."""

    def __init__(self, keys: list[str]) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, presented: str) -> str | None:
        """The owner id (first 16 hex digits of the key's digest) or None for an unknown key."""
        digest = hashlib.sha256(presented.encode()).digest()
        match = None
        # Compare against every key, without an early exit, so timing says nothing.
        for known in self._digests:
            if hmac.compare_digest(known, digest):
                match = known
        return match.hex()[:16] if match is not None else None
