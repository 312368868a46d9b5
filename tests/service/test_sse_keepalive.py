"""SSE keep-alive: while a streamed chat waits for the model (first token or the next one) it
sends `: keep-alive` comments every SSE_KEEPALIVE_SECONDS, so a load balancer's idle timeout
never cuts a slow model's stream; the stream still ends with `done`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from agent_service.config import ConfigError, load_settings
from agent_service.core.models import ChatMessage, ModelBackend

from .conftest import base_settings, run_app
from .fakes import GatedModel

SSE = {"Accept": "text/event-stream"}
COMMENT = ": keep-alive\n\n"


class PausingModel(ModelBackend):
    """Streams "one " at once, "two " 0.1 s later, and "three" `pause` seconds after that."""

    name = "pausing"
    model = "pausing-1"

    def __init__(self, pause: float) -> None:
        self.pause = pause

    async def complete(self, messages: list[ChatMessage]) -> str:
        return "one two three"

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        yield "one "
        await asyncio.sleep(0.1)
        yield "two "
        await asyncio.sleep(self.pause)
        yield "three"


async def _stream(settings, model, content: str) -> str:
    async with run_app(settings, model=model) as api:
        sid = (await api.client.post("/v1/sessions")).json()["id"]
        if isinstance(model, GatedModel):
            asyncio.get_running_loop().call_later(1.0, model.release)
        response = await api.client.post(
            f"/v1/sessions/{sid}/messages", json={"content": content}, headers=SSE
        )
        assert response.status_code == 200
        history = (await api.client.get(f"/v1/sessions/{sid}/messages")).json()["items"]
    assert history[0]["content"] == content  # stored: the comments changed nothing
    return response.text


async def test_comments_keep_a_silent_stream_busy_until_the_first_token(tmp_path) -> None:
    settings = base_settings(sqlite_path=str(tmp_path / "a.db"), sse_keepalive_seconds=0.2)
    body = await _stream(settings, GatedModel(), "slow model")  # answers after 1 s
    before, token, _ = body.partition("event: token\n")
    assert token, body
    assert before.count(COMMENT) >= 3, body
    assert before == COMMENT * before.count(COMMENT)  # nothing but whole comments
    blocks = body.rstrip("\n").split("\n\n")
    assert blocks[-1].startswith("event: done\ndata: {")
    assert '"content":"gated: slow model"' in blocks[-1]


async def test_comments_fill_a_pause_between_tokens(tmp_path) -> None:
    settings = base_settings(sqlite_path=str(tmp_path / "a.db"), sse_keepalive_seconds=0.2)
    body = await _stream(settings, PausingModel(pause=0.9), "pause")
    kinds = [block.split("\n", 1)[0] for block in body.rstrip("\n").split("\n\n")]
    tokens = [i for i, kind in enumerate(kinds) if kind == "event: token"]
    assert len(tokens) == 3, kinds
    # None before the first token (it came at once); the second came 0.1 s later, inside the
    # interval (the timer, due then, waits for the rest of it); the 0.9 s pause after it is
    # filled with a comment every 0.2 s.
    assert tokens[0] == 0, kinds
    between = kinds[tokens[1] + 1 : tokens[2]]
    assert len(between) >= 3 and set(between) == {": keep-alive"}, kinds
    assert kinds[-1] == "event: done"


async def test_zero_turns_the_comments_off(tmp_path) -> None:
    settings = base_settings(sqlite_path=str(tmp_path / "a.db"), sse_keepalive_seconds=0)
    body = await _stream(settings, GatedModel(), "quiet")
    assert ": keep-alive" not in body
    assert body.startswith("event: token\n")


def test_the_interval_stays_below_the_keep_alive_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every 15 s by default: well inside the ALB's default idle timeout of 60 s.
    assert load_settings().sse_keepalive_interval == 15
    # A shorter idle timeout (KEEP_ALIVE_TIMEOUT_SECONDS is the platform's ALB timeout + 5 s):
    # a quarter of it, so the comments still come well inside the balancer's timeout.
    monkeypatch.setenv("KEEP_ALIVE_TIMEOUT_SECONDS", "20")  # an ALB idle timeout of 15 s
    assert load_settings().sse_keepalive_interval == 5
    monkeypatch.setenv("SSE_KEEPALIVE_SECONDS", "12")  # set: as set
    assert load_settings().sse_keepalive_interval == 12
    monkeypatch.setenv("SSE_KEEPALIVE_SECONDS", "20")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == (
        "SSE_KEEPALIVE_SECONDS=20: must be below KEEP_ALIVE_TIMEOUT_SECONDS (20), which exceeds "
        "the load balancer's idle timeout: a stream quiet for longer is cut (0 disables the "
        "comments)"
    )
    monkeypatch.setenv("SSE_KEEPALIVE_SECONDS", "0")
    assert load_settings().sse_keepalive_interval == 0
