"""A streamed chat through a slow model, on the real process: while the model is silent (before
its first token, and between tokens) the service sends `: keep-alive` comments every
SSE_KEEPALIVE_SECONDS, so the connection never stays idle long enough for a load balancer's
idle timeout, and the stream still ends with `done`."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import httpx

from bench import stack

from .conftest import AUTH, ServiceFactory

KEEPALIVE_SECONDS = 0.5
FIRST_TOKEN_SECONDS = 2.0  # the fake model's latency
TOKEN_GAP_SECONDS = 1.0  # then one token a second


async def test_a_slow_models_stream_gets_comments_and_still_ends_with_done(
    start_service: ServiceFactory, shared_database: str, shared_redis: str, tmp_path: Path
) -> None:
    model, model_url = stack.start_fake_model(
        tmp_path,
        latency_ms=FIRST_TOKEN_SECONDS * 1000,
        token_rate=1 / TOKEN_GAP_SECONDS,
        tokens=3,
    )
    _, base = start_service(
        shared_database,
        shared_redis,
        MODEL_BACKEND="openai",
        MODEL_URL=model_url,
        SSE_KEEPALIVE_SECONDS=str(KEEPALIVE_SECONDS),
    )
    arrivals: list[tuple[float, bytes]] = []
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
            sid = (await client.post("/v1/sessions", json={})).json()["id"]
            sent = time.monotonic()
            async with client.stream(
                "POST",
                f"/v1/sessions/{sid}/messages",
                json={"content": "take your time"},
                headers={"Accept": "text/event-stream"},
            ) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    arrivals.append((time.monotonic(), chunk))
            history = (await client.get(f"/v1/sessions/{sid}/messages")).json()["items"]
    finally:
        model.stop()

    body = b"".join(chunk for _, chunk in arrivals).decode()
    blocks = body.rstrip("\n").split("\n\n")
    kinds = [block.split("\n", 1)[0] for block in blocks]
    first = kinds.index("event: token")
    # Before the first token: nothing but comments, one per interval of the model's silence.
    assert set(kinds[:first]) == {": keep-alive"}, kinds
    assert first >= 3, kinds
    tokens = [i for i, kind in enumerate(kinds) if kind == "event: token"]
    assert len(tokens) == 3, kinds
    for before, after in itertools.pairwise(tokens):
        assert ": keep-alive" in kinds[before + 1 : after], kinds  # the pause between tokens
    assert kinds[-1] == "event: done", kinds
    assert '"content":"tok0 tok1 tok2."' in blocks[-1]
    assert [m["content"] for m in history] == ["take your time", "tok0 tok1 tok2."]
    # The connection was never silent for much longer than the interval (it was for 2 s).
    times = [sent] + [at for at, _ in arrivals]
    longest = max(b - a for a, b in itertools.pairwise(times))
    assert longest < KEEPALIVE_SECONDS + 0.5, longest
