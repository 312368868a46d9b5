"""The session lock: another key cannot see or block it, it lives one short lease renewed while
the model runs, and a lock that vanishes mid-message (evicted) cannot corrupt the history."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as redis
from agent_service.api.sessions import TurnStream
from agent_service.core.models import ChatMessage, ModelBackend
from starlette.requests import ClientDisconnect

from bench.polling import eventually

from .conftest import KEY, OTHER_AUTH, AppFactory, base_settings, run_app
from .fakes import GatedModel


class StepModel(ModelBackend):
    """Each call waits for its own `release(n)` (calls numbered from 0), so a test decides in
    which order concurrent replies finish."""

    name = "step"
    model = "step-1"

    def __init__(self) -> None:
        self.calls: list[list[ChatMessage]] = []
        self._gates: dict[int, asyncio.Event] = {}

    def _gate(self, n: int) -> asyncio.Event:
        return self._gates.setdefault(n, asyncio.Event())

    def release(self, n: int) -> None:
        self._gate(n).set()

    async def complete(self, messages: list[ChatMessage]) -> str:
        n = len(self.calls)
        self.calls.append(messages)
        await self._gate(n).wait()
        return f"reply {n} to {messages[-1].content!r} after {len(messages) - 2} messages"

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        yield await self.complete(messages)


async def _session(client: httpx.AsyncClient) -> str:
    return (await client.post("/v1/sessions")).json()["id"]


async def test_another_key_gets_404_whether_a_message_runs_or_not(make_app: AppFactory) -> None:
    model = GatedModel()
    async with make_app(model=model) as api:
        client = api.client
        sid = await _session(client)
        url = f"/v1/sessions/{sid}/messages"
        idle = await client.post(url, json={"content": "hi"}, headers=OTHER_AUTH)
        assert idle.status_code == 404
        running = asyncio.create_task(client.post(url, json={"content": "slow"}))
        await eventually(lambda: model.waiting == 1)
        foreign = await client.post(url, json={"content": "peek"}, headers=OTHER_AUTH)
        assert foreign.status_code == 404
        assert foreign.json() == {"error": {"code": "not_found", "message": "session not found"}}
        # The owner's own second message is the one that sees the lock.
        busy = await client.post(url, json={"content": "me too"})
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "message_in_progress"
        model.release()
        assert (await running).status_code == 200
        # The foreign attempts neither stored anything nor left the session locked.
        history = (await client.get(url)).json()["items"]
        assert [m["content"] for m in history] == ["slow", "gated: slow"]
        assert (await client.post(url, json={"content": "again"})).status_code == 200


async def test_the_lock_is_a_short_lease_renewed_while_the_model_runs(pg_stack: dict) -> None:
    model = GatedModel()
    settings = base_settings(**pg_stack, session_lock_lease_seconds=0.6)
    store = redis.Redis.from_url(pg_stack["redis_url"])
    try:
        async with run_app(settings, model=model) as api:
            sid = await _session(api.client)
            url = f"/v1/sessions/{sid}/messages"
            running = asyncio.create_task(api.client.post(url, json={"content": "long"}))
            await eventually(lambda: model.waiting == 1)
            [key] = await store.keys("agent:lock:session:*")
            assert sid in key.decode()
            assert 0 < await store.pttl(key) <= 600
            # Three leases later the model still runs and the lock is still held.
            await asyncio.sleep(1.8)
            assert 0 < await store.pttl(key) <= 600
            busy = await api.client.post(url, json={"content": "second"})
            assert busy.json()["error"]["code"] == "message_in_progress"
            model.release()
            assert (await running).status_code == 200
            # Released at once, and not renewed back into existence afterwards.
            assert await store.exists(key) == 0
            await asyncio.sleep(0.5)
            assert await store.exists(key) == 0
    finally:
        await store.aclose()


async def test_an_evicted_lock_is_taken_back_by_the_next_renewal(pg_stack: dict) -> None:
    model = GatedModel()
    settings = base_settings(**pg_stack, session_lock_lease_seconds=0.6)
    store = redis.Redis.from_url(pg_stack["redis_url"])
    try:
        async with run_app(settings, model=model) as api:
            sid = await _session(api.client)
            url = f"/v1/sessions/{sid}/messages"
            running = asyncio.create_task(api.client.post(url, json={"content": "long"}))
            await eventually(lambda: model.waiting == 1)
            [key] = await store.keys("agent:lock:session:*")
            token = await store.get(key)
            assert await store.delete(key) == 1  # evicted under memory pressure
            assert await eventually(lambda: store.get(key), timeout=2) == token
            busy = await api.client.post(url, json={"content": "second"})
            assert busy.json()["error"]["code"] == "message_in_progress"
            model.release()
            assert (await running).status_code == 200
    finally:
        await store.aclose()


async def test_a_message_that_slips_in_after_an_eviction_is_not_stored(
    make_app: AppFactory, redis_url: str
) -> None:
    """The lock vanishes and a second message runs at the same time as the first: the first
    reply stored wins, the other is refused (409 history_changed) and stores nothing, so every
    stored reply was built from exactly the history before it."""
    model = StepModel()
    async with make_app(model=model) as api:
        client = api.client
        sid = await _session(client)
        url = f"/v1/sessions/{sid}/messages"
        first = asyncio.create_task(client.post(url, json={"content": "one"}))
        await eventually(lambda: len(model.calls) == 1)
        if api.app.state.redis is not None:
            store = redis.Redis.from_url(redis_url)
            assert await store.delete(*await store.keys("agent:lock:session:*")) == 1
            await store.aclose()
        else:
            api.app.state.chat._locks._local.clear()  # the process lock, lost the same way
        second = asyncio.create_task(client.post(url, json={"content": "two"}))
        await eventually(lambda: len(model.calls) == 2)
        # Both replies were built from the same (empty) history; the second finishes first.
        model.release(1)
        won = await second
        model.release(0)
        lost = await first
        assert won.status_code == 200, won.text
        assert lost.status_code == 409
        assert lost.json()["error"]["code"] == "history_changed"
        history = (await client.get(url)).json()["items"]
        assert [m["content"] for m in history] == ["two", "reply 1 to 'two' after 0 messages"]
        # The session is free, and the next reply sees exactly the stored exchange.
        third = asyncio.create_task(client.post(url, json={"content": "three"}))
        await eventually(lambda: len(model.calls) == 3)
        model.release(2)
        assert (await third).json()["reply"]["content"] == ("reply 2 to 'three' after 2 messages")
        assert (await client.get(f"/v1/sessions/{sid}")).json()["message_count"] == 4


async def test_a_stream_that_loses_the_race_ends_with_history_changed(
    make_app: AppFactory,
) -> None:
    model = StepModel()
    async with make_app(model=model) as api:
        client = api.client
        sid = await _session(client)
        url = f"/v1/sessions/{sid}/messages"
        streamed = asyncio.create_task(
            client.post(url, json={"content": "one"}, headers={"Accept": "text/event-stream"})
        )
        await eventually(lambda: len(model.calls) == 1)
        chat = api.app.state.chat
        if api.app.state.redis is not None:
            store = api.app.state.redis.client
            await store.delete(*await store.keys("agent:lock:session:*"))
        else:
            chat._locks._local.clear()
        second = asyncio.create_task(client.post(url, json={"content": "two"}))
        await eventually(lambda: len(model.calls) == 2)
        model.release(1)
        assert (await second).status_code == 200
        model.release(0)
        response = await streamed
        assert response.status_code == 200
        last = response.text.strip().split("\n\n")[-1]
        assert last.startswith("event: error\n")
        assert '"code":"history_changed"' in last
        assert len((await client.get(url)).json()["items"]) == 2


async def test_a_client_gone_before_the_stream_starts_frees_the_session(
    make_app: AppFactory,
) -> None:
    """The response is never sent (the client is gone), so the event generator never runs:
    the session must be freed all the same."""
    async with make_app() as api:
        client = api.client
        sid = await _session(client)
        chat = api.app.state.chat
        owner = api.app.state.api_keys.identify(KEY)
        turn = await chat.begin(owner, uuid.UUID(sid), "hi")

        async def receive() -> dict:
            return {"type": "http.disconnect"}

        async def gone(message: dict) -> None:
            raise OSError("connection reset by peer")

        scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
        with pytest.raises(ClientDisconnect):
            await TurnStream(turn, chat)(scope, receive, gone)
        again = await client.post(f"/v1/sessions/{sid}/messages", json={"content": "free?"})
        assert again.status_code == 200
