"""Session lifecycle, ownership, the per-pod cap and draining."""

from __future__ import annotations

import uuid

import httpx

from .conftest import OTHER_AUTH, AppFactory


async def test_session_round_trip(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/sessions", json={"user_id": "u-1", "metadata": {"a": "b"}})
    assert created.status_code == 201
    session = created.json()
    assert created.headers["location"] == f"/v1/sessions/{session['id']}"
    assert session["status"] == "active"
    assert session["user_id"] == "u-1"
    assert session["metadata"] == {"a": "b"}
    assert session["message_count"] == 0
    assert session["agent_type"] == "conversational"

    fetched = await client.get(f"/v1/sessions/{session['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == session

    await client.post(f"/v1/sessions/{session['id']}/messages", json={"content": "one"})
    ended = await client.delete(f"/v1/sessions/{session['id']}")
    assert ended.status_code == 200
    body = ended.json()
    assert body["status"] == "ended"
    assert body["message_count"] == 2
    assert 0 <= body["duration_seconds"] < 30

    after = (await client.get(f"/v1/sessions/{session['id']}")).json()
    assert after["status"] == "ended"
    assert after["ended_at"] == body["ended_at"]
    again = await client.delete(f"/v1/sessions/{session['id']}")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "session_ended"
    closed = await client.post(f"/v1/sessions/{session['id']}/messages", json={"content": "x"})
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "session_ended"
    history = await client.get(f"/v1/sessions/{session['id']}/messages")
    assert len(history.json()["items"]) == 2


async def test_create_accepts_no_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sessions")
    assert response.status_code == 201
    assert response.json()["user_id"] is None


async def test_unknown_and_foreign_sessions_are_404(client: httpx.AsyncClient) -> None:
    unknown = uuid.uuid4()
    for method, path in [
        ("GET", f"/v1/sessions/{unknown}"),
        ("DELETE", f"/v1/sessions/{unknown}"),
        ("GET", f"/v1/sessions/{unknown}/messages"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 404, path
        assert response.json() == {"error": {"code": "not_found", "message": "session not found"}}
    chat = await client.post(f"/v1/sessions/{unknown}/messages", json={"content": "hi"})
    assert chat.status_code == 404

    mine = (await client.post("/v1/sessions")).json()["id"]
    assert (await client.get(f"/v1/sessions/{mine}", headers=OTHER_AUTH)).status_code == 404
    assert (await client.delete(f"/v1/sessions/{mine}", headers=OTHER_AUTH)).status_code == 404
    assert (await client.get(f"/v1/sessions/{mine}")).json()["status"] == "active"


async def test_non_uuid_ids_are_rejected(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sessions/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert "session_id" in response.json()["error"]["message"]


async def test_session_cap_is_per_pod_with_retry_after(make_app: AppFactory) -> None:
    async with make_app(max_concurrent_sessions=2) as api:
        client = api.client
        first = (await client.post("/v1/sessions")).json()["id"]
        assert (await client.post("/v1/sessions")).status_code == 201
        ready = (await client.get("/ready")).json()
        assert ready["status"] == "degraded"  # 2/2 is above 90% of the cap
        assert ready["capacity"] == {"active_sessions": 2, "max_sessions": 2, "utilization": 1.0}

        refused = await client.post("/v1/sessions")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "at_capacity"
        assert refused.headers["retry-after"] == "10"
        # Existing sessions keep working at the cap.
        chat = await client.post(f"/v1/sessions/{first}/messages", json={"content": "still?"})
        assert chat.status_code == 200

        await client.delete(f"/v1/sessions/{first}")
        assert (await client.post("/v1/sessions")).status_code == 201
        assert (await client.get("/v1/stats")).json()["status"] == "degraded"


async def test_readiness_is_ready_at_ninety_percent(make_app: AppFactory) -> None:
    async with make_app(max_concurrent_sessions=10) as api:
        for _ in range(9):
            await api.client.post("/v1/sessions")
        assert (await api.client.get("/ready")).json()["status"] == "ready"
        await api.client.post("/v1/sessions")
        assert (await api.client.get("/ready")).json()["status"] == "degraded"


async def test_idle_sessions_stop_counting(make_app: AppFactory) -> None:
    async with make_app(max_concurrent_sessions=1, session_idle_seconds=1) as api:
        assert (await api.client.post("/v1/sessions")).status_code == 201
        assert (await api.client.post("/v1/sessions")).status_code == 503
        active = api.app.state.active
        # Age the entry instead of waiting a second.
        for key in list(active._seen):
            active._seen[key] -= 5
        assert (await api.client.post("/v1/sessions")).status_code == 201


async def test_draining_refuses_new_sessions_and_fails_readiness(api) -> None:
    client = api.client
    existing = (await client.post("/v1/sessions")).json()["id"]
    api.app.state.lifecycle.start_draining()
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "draining"
    refused = await client.post("/v1/sessions")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "draining"
    assert refused.headers["retry-after"] == "1"
    # Work in flight and existing sessions are still served while draining.
    chat = await client.post(f"/v1/sessions/{existing}/messages", json={"content": "bye"})
    assert chat.status_code == 200
    assert (await client.get("/health")).status_code == 200
