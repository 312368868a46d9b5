"""Model backends: `openai` against a real local HTTP server, `bedrock` with botocore's Stubber."""

from __future__ import annotations

import json

import boto3
import pytest
from agent_service.core.models import ChatMessage, ModelError, ModelTimeout
from agent_service.core.models.bedrock import BedrockBackend
from agent_service.core.models.openai import OpenAIBackend
from botocore.stub import Stubber

from .conftest import AppFactory
from .fakes import FakeOpenAI

PROMPT = [ChatMessage("system", "be brief"), ChatMessage("user", "hi there")]


def _openai(fake: FakeOpenAI, **overrides: object) -> OpenAIBackend:
    options: dict = {
        "url": fake.url,
        "model": "gpt-test",
        "api_key": "sk-test",
        "timeout": 5.0,
        "max_retries": 2,
        "max_connections": 10,
        "max_tokens": 64,
        "backoff_base": 0.01,
    }
    options.update(overrides)
    return OpenAIBackend(**options)


async def test_openai_chat_through_the_api(make_app: AppFactory, fake_openai: FakeOpenAI) -> None:
    settings = {"model_backend": "openai", "model_url": fake_openai.url, "model_id": "gpt-test"}
    async with make_app(**settings, model_api_key="sk-test") as api:
        sid = (await api.client.post("/v1/sessions")).json()["id"]
        first = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "hello"})
        second = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "more"})
    assert first.json()["reply"]["content"] == "echo: hello"
    assert first.json()["model"] == {"backend": "openai", "model": "gpt-test"}
    assert second.json()["reply"]["content"] == "echo: more"
    request = fake_openai.requests[-1]
    assert request["model"] == "gpt-test"
    assert request["stream"] is False
    assert request["messages"] == [
        {"role": "system", "content": "You are a helpful conversational agent."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "echo: hello"},
        {"role": "user", "content": "more"},
    ]
    assert fake_openai.headers[-1]["Authorization"] == "Bearer sk-test"


async def test_openai_streams_through_the_api(
    make_app: AppFactory, fake_openai: FakeOpenAI
) -> None:
    async with make_app(model_backend="openai", model_url=fake_openai.url) as api:
        sid = (await api.client.post("/v1/sessions")).json()["id"]
        response = await api.client.post(
            f"/v1/sessions/{sid}/messages",
            json={"content": "stream me please"},
            headers={"Accept": "text/event-stream"},
        )
        history = (await api.client.get(f"/v1/sessions/{sid}/messages")).json()["items"]
    blocks = [b for b in response.text.strip().split("\n\n")]
    tokens = [json.loads(b.split("data: ", 1)[1])["delta"] for b in blocks if "event: token" in b]
    assert tokens == ["echo: ", "stream ", "me ", "please"]
    assert blocks[-1].startswith("event: done")
    assert fake_openai.requests[-1]["stream"] is True
    assert history[-1]["content"] == "echo: stream me please"


async def test_openai_retries_5xx_and_429_then_succeeds(fake_openai: FakeOpenAI) -> None:
    fake_openai.script = [500, 429]
    backend = _openai(fake_openai)
    try:
        assert await backend.complete(PROMPT) == "echo: hi there"
    finally:
        await backend.aclose()
    assert len(fake_openai.requests) == 3


async def test_openai_gives_up_after_its_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.script = [503, 503, 503]
    backend = _openai(fake_openai)
    with pytest.raises(ModelError, match="HTTP 503"):
        await backend.complete(PROMPT)
    await backend.aclose()
    assert len(fake_openai.requests) == 3


async def test_openai_does_not_retry_client_errors(fake_openai: FakeOpenAI) -> None:
    fake_openai.script = [401]
    backend = _openai(fake_openai)
    with pytest.raises(ModelError, match="HTTP 401"):
        await backend.complete(PROMPT)
    await backend.aclose()
    assert len(fake_openai.requests) == 1


async def test_openai_timeout_is_504_through_the_api(
    make_app: AppFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = ["hang"]
    settings = {"model_url": fake_openai.url, "model_timeout": 0.3, "model_max_retries": 0}
    async with make_app(model_backend="openai", **settings) as api:
        sid = (await api.client.post("/v1/sessions")).json()["id"]
        response = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"})
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "model_timeout"
        # Nothing was stored, and the session is free again.
        assert (await api.client.get(f"/v1/sessions/{sid}")).json()["message_count"] == 0
        retry = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "y"})
        assert retry.status_code == 200


async def test_openai_unreachable_is_502(make_app: AppFactory) -> None:
    url = "http://127.0.0.1:9/v1"
    async with make_app(model_backend="openai", model_url=url, model_max_retries=0) as api:
        sid = (await api.client.post("/v1/sessions")).json()["id"]
        response = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "x"})
    assert response.status_code == 502
    assert response.json()["error"] == {
        "code": "model_error",
        "message": "model unreachable (ConnectError)",
    }


def _bedrock_client():
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _bedrock(client) -> BedrockBackend:
    return BedrockBackend(
        model="anthropic.test",
        region="us-east-1",
        timeout=5,
        max_retries=0,
        max_connections=4,
        max_tokens=64,
        client=client,
    )


def _converse_reply(text: str) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
        "metrics": {"latencyMs": 12},
    }


async def test_bedrock_converse_request_and_reply() -> None:
    client = _bedrock_client()
    with Stubber(client) as stub:
        stub.add_response(
            "converse",
            _converse_reply("hello from bedrock"),
            expected_params={
                "modelId": "anthropic.test",
                "messages": [{"role": "user", "content": [{"text": "hi there"}]}],
                "system": [{"text": "be brief"}],
                "inferenceConfig": {"maxTokens": 64},
            },
        )
        backend = _bedrock(client)
        assert await backend.complete(PROMPT) == "hello from bedrock"
        stub.assert_no_pending_responses()
    await backend.aclose()


async def test_bedrock_errors_become_model_errors() -> None:
    client = _bedrock_client()
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ThrottlingException", http_status_code=429)
        backend = _bedrock(client)
        with pytest.raises(ModelError, match=r"bedrock refused the call \(ThrottlingException\)"):
            await backend.complete(PROMPT)
    await backend.aclose()
    assert not issubclass(ModelError, ModelTimeout)


class _EventStream(dict):
    """Botocore's EventStream stand-in: an empty structure while the Stubber checks the response
    shape (when it is added), the events once armed."""

    def __init__(self, events: list[dict]) -> None:
        super().__init__()
        self._events = events
        self.armed = False

    def __iter__(self):
        return iter(self._events if self.armed else ())


async def test_bedrock_streams_text_deltas() -> None:
    client = _bedrock_client()
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "hel"}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
    ]
    with Stubber(client) as stub:
        stream = _EventStream(events)
        stub.add_response("converse_stream", {"stream": stream})
        stream.armed = True
        backend = _bedrock(client)
        chunks = [c async for c in backend.stream(PROMPT)]
    await backend.aclose()
    assert chunks == ["hel", "lo"]


async def test_bedrock_chat_through_the_api(make_app: AppFactory) -> None:
    client = _bedrock_client()
    with Stubber(client) as stub:
        stub.add_response("converse", _converse_reply("first answer"))
        stub.add_response(
            "converse",
            _converse_reply("second answer"),
            expected_params={
                "modelId": "anthropic.test",
                "messages": [
                    {"role": "user", "content": [{"text": "q1"}]},
                    {"role": "assistant", "content": [{"text": "first answer"}]},
                    {"role": "user", "content": [{"text": "q2"}]},
                ],
                "system": [{"text": "You are a helpful conversational agent."}],
                "inferenceConfig": {"maxTokens": 64},
            },
        )
        async with make_app(model=_bedrock(client)) as api:
            sid = (await api.client.post("/v1/sessions")).json()["id"]
            await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "q1"})
            second = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "q2"})
        stub.assert_no_pending_responses()
    assert second.json()["reply"]["content"] == "second answer"
    assert second.json()["model"] == {"backend": "bedrock", "model": "anthropic.test"}
