"""The chat hot path (api/fastpath.py) answers exactly as the FastAPI route does: requests it
does not take (other spellings of the same request) are served all the same, its refusals
carry the same codes and headers, and it is counted under the route's template."""

from __future__ import annotations

import uuid

import httpx

from .conftest import KEY, AppFactory
from .scrape import value


async def _session(client: httpx.AsyncClient) -> str:
    return (await client.post("/v1/sessions")).json()["id"]


async def test_other_spellings_of_a_chat_request_are_served_too(
    make_app: AppFactory,
) -> None:
    async with make_app() as api:
        client = api.client
        sid = await _session(client)
        body = b'{"content": "hello"}'
        variants = [
            (f"/v1/sessions/{sid}/messages", {"Content-Type": "application/json"}),
            (
                f"/v1/sessions/{sid}/messages",
                {"Content-Type": "application/json; charset=utf-8"},
            ),
            (f"/v1/sessions/{sid.upper()}/messages", {"Content-Type": "application/json"}),
            (
                f"/v1/sessions/{uuid.UUID(sid).hex}/messages",
                {"Content-Type": "application/json", "Authorization": f"bearer {KEY}"},
            ),
        ]
        for url, headers in variants:
            response = await client.post(url, content=body, headers=headers)
            assert response.status_code == 200, (url, headers, response.text)
            reply = response.json()
            assert reply["session_id"] == sid
            assert reply["message"]["content"] == "hello"
            assert reply["message"]["created_at"].endswith("Z")
            assert response.headers["content-type"] == "application/json"
            assert int(response.headers["content-length"]) == len(response.content)
        history = (await client.get(f"/v1/sessions/{sid}/messages")).json()["items"]
        assert len(history) == 8


async def test_a_body_sent_in_pieces_is_read_whole(make_app: AppFactory) -> None:
    async def pieces():
        yield b'{"content": '
        yield b'"in pieces"}'

    async with make_app() as api:
        sid = await _session(api.client)
        response = await api.client.post(
            f"/v1/sessions/{sid}/messages",
            content=pieces(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["message"]["content"] == "in pieces"


async def test_refusals_keep_their_codes_and_headers(make_app: AppFactory) -> None:
    async with make_app(rate_limit="3/minute") as api:
        client = api.client
        sid = await _session(client)  # hit 1
        url = f"/v1/sessions/{sid}/messages"
        missing = await client.post(f"/v1/sessions/{uuid.uuid4()}/messages", json={"content": "a"})
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
        unknown = await client.post(
            url, json={"content": "a"}, headers={"Authorization": "Bearer nope"}
        )
        assert (unknown.status_code, unknown.headers["www-authenticate"]) == (401, "Bearer")
        assert (await client.post(url, json={"content": "a"})).status_code == 200  # hit 3
        limited = await client.post(url, json={"content": "b"})
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["x-request-id"]


async def test_chats_are_counted_under_the_routes_template(make_app: AppFactory) -> None:
    async with make_app() as api:
        sid = await _session(api.client)
        for _ in range(2):
            response = await api.client.post(
                f"/v1/sessions/{sid}/messages", json={"content": "count me"}
            )
            assert response.status_code == 200
        counted = value(
            api.app.state.metrics.render().decode(),
            "http_requests_total",
            method="POST",
            route="/v1/sessions/{session_id}/messages",
            status="200",
        )
        assert counted == 2.0
