"""API keys and the per-key rate limit."""

from __future__ import annotations

import httpx
import pytest
from agent_service.core.auth import ApiKeys

from .conftest import OTHER_AUTH, AppFactory


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer wrong-key", "Basic dGVzdC1rZXk6", "bearer  test-key-x"],
)
async def test_requests_without_a_valid_key_get_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    client.headers.pop("Authorization")
    response = await client.post("/v1/sessions", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_every_configured_key_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/sessions")).status_code == 201
    assert (await client.post("/v1/sessions", headers=OTHER_AUTH)).status_code == 201


def test_keys_are_kept_only_as_digests() -> None:
    keys = ApiKeys(["alpha", "beta"])
    assert "alpha" not in repr(vars(keys))
    assert all(len(d) == 32 for d in keys._digests)
    assert keys.identify("alpha") != keys.identify("beta")
    assert keys.identify("alpha") == ApiKeys(["alpha"]).identify("alpha")
    assert keys.identify("gamma") is None


async def test_rate_limit_is_per_key_with_retry_after(make_app: AppFactory) -> None:
    async with make_app(rate_limit="3/minute") as api:
        client = api.client
        codes = [(await client.get("/v1/stats")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = await client.post("/v1/sessions")
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Another key has its own budget; probes are not limited.
        assert (await client.get("/v1/stats", headers=OTHER_AUTH)).status_code == 200
        assert (await client.get("/health")).status_code == 200


async def test_rate_limit_is_shared_by_pods_through_redis(pg_stack: dict) -> None:
    from .conftest import base_settings, run_app

    settings = base_settings(**pg_stack, rate_limit="2/minute")
    async with run_app(settings) as pod_a, run_app(settings) as pod_b:
        assert (await pod_a.client.get("/v1/stats")).status_code == 200
        assert (await pod_b.client.get("/v1/stats")).status_code == 200
        assert (await pod_a.client.get("/v1/stats")).status_code == 429
        assert (await pod_b.client.get("/v1/stats")).status_code == 429


async def test_chat_counts_toward_the_rate_limit_and_is_refused_unlocked(
    make_app: AppFactory,
) -> None:
    """Chat takes its hit in the same Redis round trip as its session lock: a refused message
    leaves the session unlocked, and the budget is the same as for every other call."""
    async with make_app(rate_limit="3/minute") as api:
        client = api.client
        sid = (await client.post("/v1/sessions")).json()["id"]
        url = f"/v1/sessions/{sid}/messages"
        assert (await client.post(url, json={"content": "one"})).status_code == 200
        assert (await client.post(url, json={"content": "two"})).status_code == 200
        limited = await client.post(url, json={"content": "three"})
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert (await client.get("/v1/stats")).status_code == 429
        # The refused message took no lock: another key (with its own budget) is answered 404,
        # not the 409 a lock still held would give before the ownership check.
        other = await client.post(url, json={"content": "four"}, headers=OTHER_AUTH)
        assert other.status_code == 404
