"""Chat: history reaches the model and is stored, pagination, SSE, one message at a time,
the response cache."""

from __future__ import annotations

import asyncio
import json

import httpx
from agent_service.api.schemas import ChatReply, Message
from agent_service.storage.tables import messages
from sqlalchemy import select

from bench.polling import eventually

from .conftest import Api, AppFactory
from .fakes import GatedModel


async def _session(client: httpx.AsyncClient) -> str:
    return (await client.post("/v1/sessions")).json()["id"]


async def test_the_model_sees_the_recent_history(api: Api) -> None:
    client = api.client
    sid = await _session(client)
    first = await client.post(f"/v1/sessions/{sid}/messages", json={"content": "hello there"})
    assert first.status_code == 200
    body = first.json()
    assert body["message"]["role"] == "user"
    assert body["message"]["content"] == "hello there"
    assert body["reply"]["role"] == "assistant"
    assert body["reply"]["content"] == (
        "Turn 1: you said 'hello there' (2 words). I can see 0 earlier messages in this session."
    )
    assert body["model"] == {"backend": "local", "model": "local-echo-1"}
    assert body["cached"] is False
    # Rendered without the response model, yet exactly its shape; timestamps as in listings.
    assert ChatReply.model_validate(body).model_dump(mode="json") == body
    listed = (await client.get(f"/v1/sessions/{sid}/messages")).json()["items"]
    assert listed == [body["message"], body["reply"]]
    assert Message.model_validate(listed[0]).created_at.utcoffset().total_seconds() == 0
    second = (await client.post(f"/v1/sessions/{sid}/messages", json={"content": "again"})).json()
    assert second["reply"]["content"].startswith("Turn 2: you said 'again' (1 word).")
    assert "I can see 2 earlier messages" in second["reply"]["content"]

    # Stored in the database, in order.
    async with api.app.state.engine.connect() as conn:
        rows = (await conn.execute(select(messages.c.role, messages.c.content))).all()
    assert [r.role for r in rows] == ["user", "assistant", "user", "assistant"]
    assert rows[2].content == "again"
    assert (await client.get(f"/v1/sessions/{sid}")).json()["message_count"] == 4


async def test_history_is_limited_to_the_configured_window(make_app: AppFactory) -> None:
    model = GatedModel()
    model.release()
    async with make_app(model=model, history_messages=2) as api:
        sid = await _session(api.client)
        for text in ("one", "two", "three"):
            await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": text})
    last_prompt = [(m.role, m.content) for m in model.calls[-1]]
    assert last_prompt == [
        ("system", "You are a helpful conversational agent."),
        ("user", "two"),
        ("assistant", "gated: two"),
        ("user", "three"),
    ]


async def test_messages_are_paginated_oldest_first(client: httpx.AsyncClient) -> None:
    sid = await _session(client)
    for i in range(3):
        await client.post(f"/v1/sessions/{sid}/messages", json={"content": f"m{i}"})
    page1 = (await client.get(f"/v1/sessions/{sid}/messages", params={"limit": 4})).json()
    assert [m["content"] for m in page1["items"] if m["role"] == "user"] == ["m0", "m1"]
    assert page1["next_after"] == page1["items"][-1]["id"]
    page2 = await client.get(
        f"/v1/sessions/{sid}/messages", params={"limit": 4, "after": page1["next_after"]}
    )
    assert [m["role"] for m in page2.json()["items"]] == ["user", "assistant"]
    assert page2.json()["items"][0]["content"] == "m2"
    assert page2.json()["next_after"] is None
    bad = await client.get(f"/v1/sessions/{sid}/messages", params={"limit": 0})
    assert bad.status_code == 422
    bad = await client.get(f"/v1/sessions/{sid}/messages", params={"limit": 201})
    assert bad.status_code == 422


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


async def test_server_sent_events_stream_the_reply_and_store_it(client: httpx.AsyncClient) -> None:
    sid = await _session(client)
    response = await client.post(
        f"/v1/sessions/{sid}/messages",
        json={"content": "stream this"},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    tokens = [data["delta"] for name, data in events if name == "token"]
    assert len(tokens) > 5
    name, done = events[-1]
    assert name == "done"
    assert ChatReply.model_validate(done).model_dump(mode="json") == done
    assert done["reply"]["content"] == "".join(tokens)
    assert done["reply"]["content"].startswith("Turn 1: you said 'stream this'")
    history = (await client.get(f"/v1/sessions/{sid}/messages")).json()["items"]
    assert [m["content"] for m in history] == ["stream this", "".join(tokens)]


async def test_a_second_message_while_one_runs_gets_409(make_app: AppFactory) -> None:
    model = GatedModel()
    async with make_app(model=model) as api:
        client = api.client
        sid = await _session(client)
        other = await _session(client)
        first = asyncio.create_task(
            client.post(f"/v1/sessions/{sid}/messages", json={"content": "slow"})
        )
        await eventually(lambda: model.waiting == 1)
        busy = await client.post(f"/v1/sessions/{sid}/messages", json={"content": "me too"})
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "message_in_progress"
        # Another session is not blocked.
        parallel = asyncio.create_task(
            client.post(f"/v1/sessions/{other}/messages", json={"content": "other"})
        )
        await eventually(lambda: model.waiting == 2)
        model.release()
        assert (await first).status_code == 200
        assert (await parallel).status_code == 200
        # The lock is released: the next message goes through.
        again = await client.post(f"/v1/sessions/{sid}/messages", json={"content": "now"})
        assert again.status_code == 200
        assert again.json()["reply"]["content"] == "gated: now"


async def test_identical_prompts_are_served_from_the_cache(api: Api) -> None:
    client = api.client
    replies = []
    for _ in range(2):
        sid = await _session(client)
        replies.append(
            (await client.post(f"/v1/sessions/{sid}/messages", json={"content": "same"})).json()
        )
    assert [r["cached"] for r in replies] == [False, True]
    assert replies[0]["reply"]["content"] == replies[1]["reply"]["content"]
    cache = (await client.get("/v1/stats")).json()["cache"]
    assert (cache["hits"], cache["misses"], cache["hit_rate"]) == (1, 1, 0.5)
    expected = "redis" if api.app.state.settings.redis_url else "memory"
    assert cache["backend"] == expected
    if api.app.state.redis is not None:
        keys = await api.app.state.redis.client.keys("agent:cache:*")
        assert len(keys) == 1
        assert 0 < await api.app.state.redis.client.ttl(keys[0]) <= 300


async def test_cache_can_be_disabled(make_app: AppFactory) -> None:
    async with make_app(cache_ttl=0) as api:
        for _ in range(2):
            sid = await _session(api.client)
            reply = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"})
            assert reply.json()["cached"] is False
        assert (await api.client.get("/v1/stats")).json()["cache"]["enabled"] is False
