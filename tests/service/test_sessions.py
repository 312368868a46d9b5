"""Session lifecycle, ownership, the per-pod cap, the per-key quota, purging and draining."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from agent_service.config import ConfigError, load_settings
from agent_service.storage.tables import messages, sessions
from sqlalchemy import select

from .conftest import OTHER_AUTH, AppFactory, base_settings


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
    async with make_app(max_concurrent_sessions=2, max_sessions_per_key=2) as api:
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
    async with make_app(max_concurrent_sessions=10, max_sessions_per_key=10) as api:
        for _ in range(9):
            await api.client.post("/v1/sessions")
        assert (await api.client.get("/ready")).json()["status"] == "ready"
        await api.client.post("/v1/sessions")
        assert (await api.client.get("/ready")).json()["status"] == "degraded"


async def test_idle_sessions_stop_counting(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_app(max_concurrent_sessions=1, session_idle_seconds=1) as api:
        assert (await api.client.post("/v1/sessions")).status_code == 201
        assert (await api.client.post("/v1/sessions")).status_code == 503
        # A second passes (the clock moves instead of the test waiting).
        now = time.monotonic() + 1.5
        monkeypatch.setattr("agent_service.core.active.time.monotonic", lambda: now)
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


async def test_one_key_cannot_take_every_slot_of_the_pod(make_app: AppFactory) -> None:
    """Per-key quota: a key at MAX_SESSIONS_PER_KEY gets 429 naming it, while other keys still
    find the rest of the pod's cap."""
    async with make_app(max_concurrent_sessions=4, max_sessions_per_key=2) as api:
        client = api.client
        mine = [(await client.post("/v1/sessions")).json()["id"] for _ in range(2)]
        refused = await client.post("/v1/sessions")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "session_quota_exceeded"
        assert "MAX_SESSIONS_PER_KEY" in refused.json()["error"]["message"]
        # Its sessions stay active for SESSION_IDLE_SECONDS (1800): that is the wait.
        assert 1790 <= int(refused.headers["retry-after"]) <= 1800
        for _ in range(2):
            other = await client.post("/v1/sessions", headers=OTHER_AUTH)
            assert other.status_code == 201
        # The pod is full now: everyone gets at_capacity, the quota is not the reason.
        assert (await client.post("/v1/sessions", headers=OTHER_AUTH)).status_code == 503
        ready = await client.get("/ready")
        assert ready.json()["capacity"]["active_sessions"] == 4
        # Ending one of its sessions gives the key a slot back.
        assert (await client.delete(f"/v1/sessions/{mine[0]}")).status_code == 200
        assert (await client.post("/v1/sessions")).status_code == 201


async def test_another_keys_delete_does_not_free_a_slot(make_app: AppFactory) -> None:
    async with make_app(max_concurrent_sessions=4, max_sessions_per_key=1) as api:
        client = api.client
        mine = (await client.post("/v1/sessions")).json()["id"]
        assert (await client.delete(f"/v1/sessions/{mine}", headers=OTHER_AUTH)).status_code == 404
        assert (await client.post("/v1/sessions")).status_code == 429


def test_the_quota_defaults_to_the_cap_with_one_key_and_half_with_several() -> None:
    assert base_settings(api_keys="only", max_concurrent_sessions=100).session_quota == 100
    assert base_settings(max_concurrent_sessions=101).session_quota == 51  # two keys
    assert base_settings(max_sessions_per_key=7).session_quota == 7
    with pytest.raises(ConfigError) as bad:
        load_settings(api_keys="k", max_concurrent_sessions=10, max_sessions_per_key=11)
    assert str(bad.value) == "MAX_SESSIONS_PER_KEY=11: must be at most MAX_CONCURRENT_SESSIONS (10)"


async def test_purge_deletes_the_session_and_its_history(make_app: AppFactory) -> None:
    async with make_app(max_concurrent_sessions=4, max_sessions_per_key=1) as api:
        client = api.client
        sid = (await client.post("/v1/sessions")).json()["id"]
        kept = (await client.post("/v1/sessions", headers=OTHER_AUTH)).json()["id"]
        for text in ("one", "two"):
            await client.post(f"/v1/sessions/{sid}/messages", json={"content": text})
        await client.post(
            f"/v1/sessions/{kept}/messages", json={"content": "x"}, headers=OTHER_AUTH
        )
        # Only the owner can purge.
        foreign = await client.delete(f"/v1/sessions/{sid}?purge=true", headers=OTHER_AUTH)
        assert foreign.status_code == 404

        purged = await client.delete(f"/v1/sessions/{sid}", params={"purge": "true"})
        assert purged.status_code == 204
        assert purged.content == b""
        for path in (f"/v1/sessions/{sid}", f"/v1/sessions/{sid}/messages"):
            assert (await client.get(path)).status_code == 404
        assert (await client.delete(f"/v1/sessions/{sid}?purge=true")).status_code == 404
        async with api.app.state.engine.connect() as conn:
            rows = (await conn.execute(select(messages.c.session_id, messages.c.role))).all()
            left = (await conn.execute(select(sessions.c.id))).scalars().all()
        # The other key's session and its exchange are untouched.
        assert sorted((str(r.session_id), r.role) for r in rows) == [
            (kept, "assistant"),
            (kept, "user"),
        ]
        assert [str(s) for s in left] == [kept]
        # Its slot is free again (quota 1), and ended sessions can be purged too.
        again = (await client.post("/v1/sessions")).json()["id"]
        assert (await client.delete(f"/v1/sessions/{again}")).status_code == 200
        assert (await client.delete(f"/v1/sessions/{again}?purge=1")).status_code == 204
        # Without purge, DELETE still only ends a session.
        assert (await client.get(f"/v1/sessions/{kept}", headers=OTHER_AUTH)).status_code == 200
        bad = await client.delete(f"/v1/sessions/{kept}?purge=maybe", headers=OTHER_AUTH)
        assert bad.status_code == 422
        assert "purge" in bad.json()["error"]["message"]
