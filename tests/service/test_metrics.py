"""Prometheus metrics: on METRICS_PORT only (never on the public port the load balancer
reaches), and the series the alert rules read: sessions against the cap, chats waiting on the
model, model calls by backend and outcome."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from agent_service.config import ConfigError

from bench.polling import eventually
from bench.stack import free_port

from .conftest import AppFactory, base_settings, run_app
from .fakes import FakeOpenAI, GatedModel
from .scrape import value as sample


async def test_the_public_port_serves_no_metrics(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "http_requests_total" not in response.text
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths


async def test_the_metrics_port_serves_the_registry_while_the_app_runs(
    make_app: AppFactory,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with make_app(metrics_port=port, host="127.0.0.1") as api:
        sid = (await api.client.post("/v1/sessions")).json()["id"]
        await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "hi"})
        async with httpx.AsyncClient(base_url=url, trust_env=False) as scraper:
            response = await scraper.get("/metrics")
            other = await scraper.get("/v1/sessions")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    route = {"method": "POST", "route": "/v1/sessions"}
    assert sample(text, "http_requests_total", status="201", **route) == 1
    assert sample(text, "http_request_duration_seconds_count", **route) == 1
    assert sample(text, "agent_sessions_active") == 1
    assert sample(text, "agent_sessions_capacity") == 100
    assert sample(text, "agent_chats_in_flight") == 0
    assert sample(text, "agent_cache_requests_total", result="miss") == 1
    assert sample(text, "agent_model_requests_total", backend="local", outcome="ok") == 1
    assert sample(text, "agent_model_requests_total", backend="local", outcome="error") == 0
    assert sample(text, "agent_model_requests_total", backend="local", outcome="timeout") == 0
    assert sample(text, "agent_model_request_duration_seconds_count", backend="local") == 1
    assert "# TYPE agent_tasks_total counter" in text
    assert "_created" not in text  # no second series per counter
    # The scrape itself is not an API request, and the port serves nothing else.
    assert sample(text, "http_requests_total", method="GET", route="/metrics", status="200") is None
    assert other.status_code == 404
    # Closed with the app.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/metrics", trust_env=False)


async def test_a_taken_metrics_port_stops_the_start_with_its_name(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = base_settings(
            sqlite_path=str(tmp_path / "a.db"), host="127.0.0.1", metrics_port=port
        )
        with pytest.raises(ConfigError, match=rf"^METRICS_PORT={port}: cannot listen on "):
            async with run_app(settings):
                pass


async def test_model_calls_are_counted_by_backend_and_outcome(
    fake_openai: FakeOpenAI, tmp_path
) -> None:
    settings = base_settings(
        sqlite_path=str(tmp_path / "a.db"),
        model_backend="openai",
        model_url=fake_openai.url,
        model_timeout=0.5,
        model_max_retries=0,
    )
    async with run_app(settings) as api:
        client = api.client
        sid = (await client.post("/v1/sessions")).json()["id"]
        url = f"/v1/sessions/{sid}/messages"
        assert (await client.post(url, json={"content": "one"})).status_code == 200
        fake_openai.script = [500]
        assert (await client.post(url, json={"content": "two"})).status_code == 502
        fake_openai.script = ["hang"]
        assert (await client.post(url, json={"content": "three"})).status_code == 504
        streamed = await client.post(
            url, json={"content": "four"}, headers={"Accept": "text/event-stream"}
        )
        assert streamed.text.rstrip().split("\n\n")[-1].startswith("event: done")
        text = api.app.state.metrics.render().decode()
    counts = {
        outcome: sample(text, "agent_model_requests_total", backend="openai", outcome=outcome)
        for outcome in ("ok", "error", "timeout")
    }
    assert counts == {"ok": 2, "error": 1, "timeout": 1}
    assert sample(text, "agent_model_request_duration_seconds_count", backend="openai") == 4
    # The timed-out call waited its 0.5 s; the 0.5 s bucket holds the other three.
    assert (
        sample(text, "agent_model_request_duration_seconds_bucket", backend="openai", le="0.5") == 3
    )
    assert sample(text, "agent_model_request_duration_seconds_sum", backend="openai") >= 0.5


async def test_chats_waiting_on_the_model_are_in_flight_and_tasks_are_not(tmp_path) -> None:
    model = GatedModel()
    async with run_app(base_settings(sqlite_path=str(tmp_path / "a.db")), model=model) as api:
        client = api.client
        metrics = api.app.state.metrics
        sid = (await client.post("/v1/sessions")).json()["id"]
        chat = asyncio.create_task(
            client.post(f"/v1/sessions/{sid}/messages", json={"content": "wait"})
        )
        await eventually(lambda: model.waiting == 1)
        # A task on the same model (the in-process worker runs it) is a model call, not a chat.
        await client.post("/v1/tasks", json={"prompt": "background"})
        await eventually(lambda: model.waiting == 2)
        assert sample(metrics.render().decode(), "agent_chats_in_flight") == 1
        model.release()
        assert (await chat).status_code == 200
        await eventually(lambda: model.waiting == 0)
        text = metrics.render().decode()
    assert sample(text, "agent_chats_in_flight") == 0
    assert sample(text, "agent_model_requests_total", backend="gated", outcome="ok") == 2


async def test_the_session_capacity_is_the_configured_cap(make_app: AppFactory) -> None:
    async with make_app(max_concurrent_sessions=7) as api:
        text = api.app.state.metrics.render().decode()
    assert sample(text, "agent_sessions_capacity") == 7
    assert sample(text, "agent_sessions_active") == 0
