"""Bad input gets a 4xx JSON error, the unexpected a 500 without details, and an unreachable
PostgreSQL or Redis a 503 - from which the service recovers without a restart."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from bench.polling import eventually

from .conftest import Api, AppFactory, base_settings, libpq, run_app
from .fakes import FailingModel, TcpProxy


async def _session(client: httpx.AsyncClient) -> str:
    return (await client.post("/v1/sessions")).json()["id"]


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text


async def test_bad_input_gets_a_json_4xx(client: httpx.AsyncClient) -> None:
    sid = await _session(client)
    url = f"/v1/sessions/{sid}/messages"
    json_headers = {"Content-Type": "application/json"}
    _assert_error(
        await client.post(url, content=b"{not json", headers=json_headers), 400, "invalid_json"
    )
    _assert_error(await client.post(url, json={}), 422, "validation_error")
    _assert_error(await client.post(url, json={"content": ""}), 422, "validation_error")
    _assert_error(await client.post(url, json={"content": 5}), 422, "validation_error")
    _assert_error(await client.post(url, json=["content"]), 422, "validation_error")
    _assert_error(
        await client.post(url, json={"content": "x", "extra": 1}), 422, "validation_error"
    )
    oversize = await client.post(url, json={"content": "x" * 16_001})
    _assert_error(oversize, 422, "validation_error")
    assert "16000" in oversize.json()["error"]["message"]
    _assert_error(
        await client.post(url, content=b"content=hi", headers={"Content-Type": "text/plain"}),
        422,
        "validation_error",
    )
    _assert_error(
        await client.post("/v1/tasks", json={"prompt": "p", "priority": "urgent"}),
        422,
        "validation_error",
    )
    _assert_error(
        await client.post("/v1/sessions", json={"user_id": "u" * 129}), 422, "validation_error"
    )
    _assert_error(await client.get("/v1/tasks/123"), 422, "validation_error")
    _assert_error(await client.get("/no/such/route"), 404, "not_found")
    _assert_error(await client.put("/v1/sessions"), 405, "method_not_allowed")


async def test_values_the_database_cannot_store_are_rejected(client: httpx.AsyncClient) -> None:
    sid = await _session(client)
    json_headers = {"Content-Type": "application/json"}
    for url, raw in [
        (f"/v1/sessions/{sid}/messages", b'{"content": "a\\u0000b"}'),
        (f"/v1/sessions/{sid}/messages", b'{"content": "lone \\ud800 surrogate"}'),
        ("/v1/tasks", b'{"prompt": "x\\u0000"}'),
        ("/v1/sessions", b'{"user_id": "\\u0000"}'),
        ("/v1/sessions", b'{"metadata": {"k": "\\u0000"}}'),
    ]:
        _assert_error(
            await client.post(url, content=raw, headers=json_headers), 422, "validation_error"
        )
    too_far = await client.get(f"/v1/sessions/{sid}/messages", params={"after": 2**64})
    _assert_error(too_far, 422, "validation_error")
    odd_key = await client.post(
        "/v1/tasks", json={"prompt": "p"}, headers={"Idempotency-Key": "a b"}
    )
    _assert_error(odd_key, 422, "validation_error")


async def test_bodies_over_the_limit_get_413(make_app: AppFactory) -> None:
    async with make_app(max_request_bytes=2048) as api:
        sid = await _session(api.client)
        big = {"content": "x" * 3000}
        _assert_error(
            await api.client.post(f"/v1/sessions/{sid}/messages", json=big),
            413,
            "payload_too_large",
        )

        async def chunked():  # no Content-Length: counted while reading
            yield b'{"content": "'
            for _ in range(5):
                yield b"x" * 1000
            yield b'"}'

        response = await api.client.post(
            f"/v1/sessions/{sid}/messages",
            content=chunked(),
            headers={"Content-Type": "application/json"},
        )
        _assert_error(response, 413, "payload_too_large")


async def test_unexpected_errors_are_500_without_details(make_app: AppFactory) -> None:
    async with make_app(model=FailingModel()) as api:
        sid = await _session(api.client)
        response = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"})
        _assert_error(response, 500, "internal_error")
        assert "secret internal detail" not in response.text
        assert response.headers["x-request-id"]
        assert (await api.client.get("/v1/stats")).json()["error_count"] == 1
        # The failed message released the session lock.
        again = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"})
        _assert_error(again, 500, "internal_error")


def _redis_via(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


async def test_postgres_down_is_503_and_recovers_without_restart(
    pg_url: str, redis_url: str
) -> None:
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(parts._replace(netloc=f"agent:agent@127.0.0.1:{proxy.port}"))
    settings = base_settings(database_url=via_proxy, redis_url=redis_url, db_connect_timeout=2)
    async with run_app(settings) as api:
        sid = await _session(api.client)
        await proxy.cut()
        down = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"})
        _assert_error(down, 503, "database_unavailable")
        assert down.headers["retry-after"] == "5"
        _assert_error(await api.client.post("/v1/sessions"), 503, "database_unavailable")
        ready = await api.client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["checks"]["database"]["status"] == "down"
        assert ready.json()["checks"]["redis"]["status"] == "up"
        assert (await api.client.get("/health")).status_code == 200

        await proxy.start()  # PostgreSQL is back on the same address
        assert (await api.client.get("/ready")).json()["status"] == "ready"
        back = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "y"})
        assert back.status_code == 200
    await proxy.cut()


async def test_connections_the_server_closed_are_replaced_without_an_error(
    pg_url: str, redis_url: str
) -> None:
    """No pre-ping round trip, yet a restart or failover (the server closing every pooled
    connection) costs no request: closed connections are skipped at checkout."""
    settings = base_settings(database_url=pg_url, redis_url=redis_url, db_pool_size=1)
    async with run_app(settings) as api:
        sid = await _session(api.client)
        assert (
            await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "a"})
        ).status_code == 200
        async with api.app.state.engine.connect() as conn:  # the pool's one connection
            pooled = (await conn.get_raw_connection()).driver_connection
        admin = await asyncpg.connect(libpq(pg_url), timeout=5)
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert ended >= 1
        await eventually(pooled.is_closed)
        for text in ("b", "c"):
            chat = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": text})
            assert chat.status_code == 200, chat.text
        assert (await api.client.get(f"/v1/sessions/{sid}")).status_code == 200


@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("22023", 422, "invalid_value"),
        ("57014", 503, "database_unavailable"),
        ("XX000", 500, "internal_error"),
    ],
)
async def test_database_errors_on_the_chat_path_are_json(
    pg_url: str, redis_url: str, sqlstate: str, status: int, code: str
) -> None:
    """The chat path's statements run on asyncpg directly: its errors map like SQLAlchemy's."""
    admin = await asyncpg.connect(libpq(pg_url), timeout=5)
    await admin.execute(
        "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"RAISE EXCEPTION 'refused' USING ERRCODE = '{sqlstate}'; END $$; "
        "CREATE TRIGGER fail_insert BEFORE INSERT ON messages "
        "FOR EACH ROW EXECUTE FUNCTION fail_insert()"
    )
    try:
        async with run_app(base_settings(database_url=pg_url, redis_url=redis_url)) as api:
            sid = await _session(api.client)
            url = f"/v1/sessions/{sid}/messages"
            _assert_error(await api.client.post(url, json={"content": "x"}), status, code)
            # The session lock was released: the next message fails the same way, not 409.
            _assert_error(await api.client.post(url, json={"content": "y"}), status, code)
    finally:
        await admin.execute("DROP TRIGGER fail_insert ON messages; DROP FUNCTION fail_insert()")
        await admin.close()


async def test_redis_down_bypasses_the_cache_and_recovers(pg_url: str, redis_url: str) -> None:
    target = urlsplit(redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    settings = base_settings(database_url=pg_url, redis_url=_redis_via(redis_url, proxy.port))
    async with run_app(settings) as api:
        client = api.client
        sid = await _session(client)
        await proxy.cut()
        # Chat keeps answering: cache bypassed, lock and rate limit fall back to memory.
        for text in ("one", "two"):
            chat = await client.post(f"/v1/sessions/{sid}/messages", json={"content": text})
            assert chat.status_code == 200
            assert chat.json()["cached"] is False
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["redis"]["status"] == "down"
        assert ready.json()["checks"]["database"]["status"] == "up"
        assert (await client.get("/v1/stats")).json()["cache"]["errors"] >= 1
        # A task is accepted all the same: stored, and handed out by a worker's reconciler
        # once Redis is back (tests/service/test_task_recovery.py).
        stored = await client.post(
            "/v1/tasks", json={"prompt": "p"}, headers={"Idempotency-Key": "k1"}
        )
        assert stored.status_code == 202
        task_id = stored.json()["id"]
        assert (await client.get(f"/v1/tasks/{task_id}")).json()["status"] == "queued"

        await proxy.start()
        assert (await client.get("/ready")).json()["status"] == "ready"
        again = await client.post(
            "/v1/tasks", json={"prompt": "p"}, headers={"Idempotency-Key": "k1"}
        )
        assert (again.status_code, again.json()["id"]) == (202, task_id)
        sid2 = await _session(client)
        await client.post(f"/v1/sessions/{sid2}/messages", json={"content": "cache me"})
        sid3 = await _session(client)
        again = await client.post(f"/v1/sessions/{sid3}/messages", json={"content": "cache me"})
        assert again.json()["cached"] is True
    await proxy.cut()


async def test_service_starts_while_dependencies_are_down(tmp_path) -> None:
    settings = base_settings(
        database_url="postgresql+asyncpg://agent:agent@127.0.0.1:9/agent",
        redis_url="redis://127.0.0.1:9/0",
        db_connect_timeout=1,
    )
    async with run_app(settings) as api:
        assert (await api.client.get("/health")).status_code == 200
        ready = await api.client.get("/ready")
        assert ready.status_code == 503
        assert {k: v["status"] for k, v in ready.json()["checks"].items()} == {
            "database": "down",
            "redis": "down",
        }
        _assert_error(
            await api.client.get(f"/v1/sessions/{uuid.uuid4()}"), 503, "database_unavailable"
        )


@pytest.mark.parametrize("status", [401, 429])
async def test_auth_errors_are_json(client: httpx.AsyncClient, status: int, api: Api) -> None:
    if status == 401:
        response = await client.get("/v1/stats", headers={"Authorization": "Bearer nope"})
        _assert_error(response, 401, "unauthorized")
    else:
        api.app.state.rate_limiter.item = type(api.app.state.rate_limiter.item)(0, 1)
        response = await client.get("/v1/stats")
        _assert_error(response, 429, "rate_limited")
