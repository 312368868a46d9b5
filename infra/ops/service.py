"""The HTTP half of `python -m infra verify`: the agent service through the load balancer."""

from __future__ import annotations

from typing import Any

from infra.ops.checks import REQUEST_TIMEOUT, Result


class Service:
    """The agent service through the load balancer."""

    def __init__(self, base_url: str, api_key: str | None, verify_tls: bool):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=REQUEST_TIMEOUT,
            verify=verify_tls,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def probe(self, path: str) -> Result:
        response = self._client.get(path)
        status = _json(response).get("status", "")
        detail = f"GET {path} -> {response.status_code}" + (f" ({status})" if status else "")
        return Result(response.status_code == 200, detail)

    def session_round_trip(self) -> Result:
        if not self.api_key:
            return Result(False, "no API key: pass --api-key, set AGENT_API_KEY or output apiKeys")
        auth = {"Authorization": f"Bearer {self.api_key}"}
        created = self._client.post("/v1/sessions", json={"user_id": "verify"}, headers=auth)
        if created.status_code != 201:
            return Result(False, f"POST /v1/sessions -> {created.status_code} (want 201)")
        session = _json(created).get("id")
        try:
            chat = self._client.post(
                f"/v1/sessions/{session}/messages",
                json={"content": "verify: reply with anything"},
                headers=auth,
            )
            reply = (_json(chat).get("reply") or {}).get("content", "")
            if chat.status_code not in (200, 201) or not reply:
                return Result(False, f"POST /v1/sessions/{session}/messages -> {chat.status_code}")
        finally:
            ended = self._client.delete(f"/v1/sessions/{session}", headers=auth)
        if ended.status_code != 200:
            return Result(False, f"DELETE /v1/sessions/{session} -> {ended.status_code}")
        return Result(True, f"session {session}: created, answered ({len(reply)} chars), ended")


def _json(response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
