"""The task API: submit (priority, Idempotency-Key), read, cancel; the in-process worker of the
embedded default completes tasks by itself."""

from __future__ import annotations

import httpx

from bench.polling import eventually

from .conftest import OTHER_AUTH, Api, AppFactory


async def _wait_finished(client: httpx.AsyncClient, task_id: str) -> dict:
    async def finished() -> dict | None:
        body = (await client.get(f"/v1/tasks/{task_id}")).json()
        return body if body["status"] in {"succeeded", "failed", "cancelled"} else None

    return await eventually(finished)


async def test_submit_returns_202_and_the_queued_task(pg_stack: dict) -> None:
    from .conftest import base_settings, run_app

    async with run_app(base_settings(**pg_stack)) as api:  # Redis queue, no worker running
        response = await api.client.post("/v1/tasks", json={"prompt": "summarise the day"})
        assert response.status_code == 202
        task = response.json()
        assert response.headers["location"] == f"/v1/tasks/{task['id']}"
        assert task["status"] == "queued"
        assert task["priority"] == "normal"
        assert task["prompt"] == "summarise the day"
        assert task["result"] is None and task["attempts"] == 0
        assert (await api.client.get(f"/v1/tasks/{task['id']}")).json() == task
        assert (
            await api.client.get(f"/v1/tasks/{task['id']}", headers=OTHER_AUTH)
        ).status_code == 404
        high = (
            await api.client.post("/v1/tasks", json={"prompt": "now", "priority": "high"})
        ).json()
        streams = api.app.state.redis.client
        assert await streams.xlen("agent:tasks:normal") == 1
        assert await streams.xlen("agent:tasks:high") == 1
        assert high["priority"] == "high"


async def test_the_embedded_default_runs_tasks_in_process(tmp_path) -> None:
    from .conftest import base_settings, run_app

    async with run_app(base_settings(sqlite_path=str(tmp_path / "a.db"))) as api:
        task = (await api.client.post("/v1/tasks", json={"prompt": "write a haiku"})).json()
        done = await _wait_finished(api.client, task["id"])
    assert done["status"] == "succeeded"
    assert done["result"] == (
        "Turn 1: you said 'write a haiku' (3 words). I can see 0 earlier messages in this session."
    )
    assert done["attempts"] == 1
    assert done["started_at"] and done["finished_at"]


async def test_idempotency_key_returns_the_first_task(api: Api) -> None:
    client = api.client
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post(
        "/v1/tasks", json={"prompt": "p", "priority": "high"}, headers=headers
    )
    second = await client.post(
        "/v1/tasks", json={"prompt": "p", "priority": "high"}, headers=headers
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    changed = await client.post("/v1/tasks", json={"prompt": "other"}, headers=headers)
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    # Keys are per API key: another caller's same key is a different task.
    theirs = await client.post(
        "/v1/tasks", json={"prompt": "p", "priority": "high"}, headers={**headers, **OTHER_AUTH}
    )
    assert theirs.json()["id"] != first.json()["id"]
    without = await client.post("/v1/tasks", json={"prompt": "p"})
    assert without.json()["id"] != first.json()["id"]
    if api.app.state.redis is not None:
        assert await api.app.state.redis.client.xlen("agent:tasks:high") == 2


async def test_cancel_a_queued_task(pg_stack: dict) -> None:
    from .conftest import base_settings, run_app

    async with run_app(base_settings(**pg_stack)) as api:
        task = (await api.client.post("/v1/tasks", json={"prompt": "p"})).json()
        cancelled = await api.client.post(f"/v1/tasks/{task['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["finished_at"] is not None
        again = await api.client.post(f"/v1/tasks/{task['id']}/cancel")
        assert again.status_code == 409
        assert again.json()["error"] == {
            "code": "task_finished",
            "message": "task already cancelled",
        }


async def test_cancel_and_get_unknown_tasks(make_app: AppFactory) -> None:
    async with make_app() as api:
        missing = "00000000-0000-4000-8000-000000000000"
        assert (await api.client.get(f"/v1/tasks/{missing}")).status_code == 404
        response = await api.client.post(f"/v1/tasks/{missing}/cancel")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        finished = (await api.client.post("/v1/tasks", json={"prompt": "p"})).json()
        if api.app.state.redis is None:
            await _wait_finished(api.client, finished["id"])
            late = await api.client.post(f"/v1/tasks/{finished['id']}/cancel")
            assert late.status_code == 409
            assert late.json()["error"]["message"] == "task already succeeded"


async def test_task_input_is_validated(client: httpx.AsyncClient) -> None:
    for body in ({}, {"prompt": ""}, {"prompt": "p", "priority": "low"}, {"prompt": "x" * 16_001}):
        response = await client.post("/v1/tasks", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "validation_error"
    long_key = await client.post(
        "/v1/tasks", json={"prompt": "p"}, headers={"Idempotency-Key": "k" * 256}
    )
    assert long_key.status_code == 422
