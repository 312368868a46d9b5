"""Liveness, readiness, request ids and the stats summary (metrics: test_metrics.py)."""

from __future__ import annotations

import httpx

from .conftest import Api, AppFactory


async def test_health_is_ok_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_each_dependency(api: Api) -> None:
    response = await api.client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "up"
    expected_redis = "up" if api.app.state.settings.redis_url else "disabled"
    assert body["checks"]["redis"]["status"] == expected_redis
    assert body["capacity"] == {"active_sessions": 0, "max_sessions": 100, "utilization": 0.0}


async def test_every_response_has_a_request_id(client: httpx.AsyncClient) -> None:
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/nope", headers={"X-Request-ID": "abc-123"})
    assert echoed.status_code == 404
    assert echoed.headers["x-request-id"] == "abc-123"
    # A hostile id is not echoed into headers and logs; a fresh one replaces it.
    replaced = await client.get("/health", headers={"X-Request-ID": "x" * 500})
    assert replaced.headers["x-request-id"] != "x" * 500


async def test_stats_summarise_this_pod(make_app: AppFactory) -> None:
    async with make_app(agent_type="research") as api:
        client = api.client
        await client.post("/v1/sessions")
        await client.get("/v1/sessions/00000000-0000-0000-0000-000000000000")
        body = (await client.get("/v1/stats")).json()
    assert body["service_name"] == "agent-service"
    assert body["agent_type"] == "research"
    assert body["pod"] == "test-pod"
    assert body["status"] == "healthy"
    assert body["request_count"] == 2  # counted when a response finishes: not this one
    assert body["client_error_count"] == 1
    assert body["error_count"] == 0
    assert body["error_rate"] == 0.0
    assert body["active_sessions"] == 1
    assert body["max_sessions"] == 100
    assert body["uptime_seconds"] > 0
    assert body["model"] == {"backend": "local", "model": "local-echo-1"}
    assert body["cache"]["ttl_seconds"] == 300


async def test_openapi_documents_the_error_shape(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    chat = schema["paths"]["/v1/sessions/{session_id}/messages"]["post"]["responses"]
    for status in ("400", "401", "404", "409", "413", "422", "429", "503"):
        assert chat[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert "text/event-stream" in chat["200"]["content"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
