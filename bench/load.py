"""Closed-loop load test: N users, each sending its next request when the last one answered.

    python -m bench.load --url http://127.0.0.1:8000 --scenario chat --users 32 --duration 10
    python -m bench.load --scenario health --users 32 --requests 50000 --json health.json

Scenarios: `health` (GET /health), `sessions` (create, read, end: session churn), `chat` (one
session per user, a message at a time), `chat-stream` (the same as Server-Sent Events, read to
the `done` event), `tasks` (submit, then poll until finished: latency is submit to complete).

Prints requests/s, latency mean/p50/p95/p99/max and responses by status; `--json FILE` writes
the same as JSON. Bounded: at most --duration seconds of measurement (after --warmup seconds
that are not counted) and, with --requests, at most that many counted requests; every request
has a timeout. Each user holds one HTTP/1.1 keep-alive connection (`--client raw`, the lean
default, or `--client httpx`; see bench/http.py for why).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .http import CLIENTS, Client, Response, TransportError
from .polling import NotWithin, eventually

MAX_USERS = 5000
MAX_DURATION = 3600.0
FINISHED = {"succeeded", "failed", "cancelled"}
_JSON = {"Content-Type": "application/json"}
_SSE = {"Content-Type": "application/json", "Accept": "text/event-stream"}
RUN = os.urandom(4).hex()


@dataclass
class Recorder:
    """Latencies (seconds) and response counts of the counted window."""

    record_from: float
    stop_at: float
    budget: int | None
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    extra: dict[str, list[float]] = field(default_factory=dict)
    first: float | None = None
    last: float = 0.0
    cache_hits: int = 0

    def more(self) -> bool:
        """Whether a user should send another request."""
        if time.perf_counter() >= self.stop_at:
            return False
        return self.budget is None or len(self.latencies) + self.failures < self.budget

    @property
    def failures(self) -> int:
        return sum(n for k, n in self.statuses.items() if not k.isdigit())

    def counting(self, started: float) -> bool:
        return started >= self.record_from

    def add(self, started: float, status: str, **extra: float) -> None:
        """One finished request that started at `started` (perf_counter)."""
        if not self.counting(started):
            return
        now = time.perf_counter()
        if self.first is None or started < self.first:
            self.first = started
        self.last = max(self.last, now)
        self.statuses[status] += 1
        if status.isdigit():
            self.latencies.append(now - started)
        for name, value in extra.items():
            self.extra.setdefault(name, []).append(value)


Step = Callable[[Client, Recorder, dict], Awaitable[None]]


async def _timed(
    rec: Recorder, client: Client, method: str, path: str, body: bytes | None = None, **kw: Any
) -> Response | None:
    """One request, recorded; the response, or None when the transport failed."""
    started = time.perf_counter()
    try:
        response = await client.request(method, path, body, **kw)
    except TransportError as exc:
        rec.add(started, str(exc))
        return None
    rec.add(started, str(response.status))
    return response


async def _new_session(client: Client) -> str:
    response = await client.request("POST", "/v1/sessions", b"{}", _JSON)
    if response.status != 201:
        raise RuntimeError(f"cannot create a session: {response.status} {response.body[:200]!r}")
    return response.json()["id"]


async def step_health(client: Client, rec: Recorder, state: dict) -> None:
    await _timed(rec, client, "GET", "/health")


async def step_sessions(client: Client, rec: Recorder, state: dict) -> None:
    created = await _timed(rec, client, "POST", "/v1/sessions", b"{}", headers=_JSON)
    if created is None or created.status != 201:
        return
    url = f"/v1/sessions/{created.json()['id']}"
    await _timed(rec, client, "GET", url)
    await _timed(rec, client, "DELETE", url)


def _message(state: dict) -> bytes:
    # Unique per run too: a conversation replayed from an earlier run would be served from the
    # service's response cache and skip the model.
    state["n"] = state.get("n", 0) + 1
    text = f"user {state['user']} of run {RUN} says hello, message {state['n']}"
    return json.dumps({"content": text}).encode()


async def step_chat(client: Client, rec: Recorder, state: dict) -> None:
    if "sid" not in state:
        state["sid"] = await _new_session(client)
    url = f"/v1/sessions/{state['sid']}/messages"
    response = await _timed(rec, client, "POST", url, _message(state), headers=_JSON)
    if response is not None and b'"cached":true' in response.body:
        rec.cache_hits += 1


async def step_chat_stream(client: Client, rec: Recorder, state: dict) -> None:
    if "sid" not in state:
        state["sid"] = await _new_session(client)
    url = f"/v1/sessions/{state['sid']}/messages"
    started = time.perf_counter()
    try:
        response = await client.request("POST", url, _message(state), _SSE)
    except TransportError as exc:
        rec.add(started, str(exc))
        return
    status = str(response.status)
    if status == "200" and b"event: done" not in response.body:
        status = "stream-without-done"
    if b'"cached":true' in response.body:
        rec.cache_hits += 1
    extra = {"ttft": response.first_byte} if response.first_byte is not None else {}
    rec.add(started, status, **extra)


async def step_task(client: Client, rec: Recorder, state: dict) -> None:
    """Submit a task and poll it to the end; one recorded 'request' per task."""
    state["n"] = state.get("n", 0) + 1
    started = time.perf_counter()
    prompt = f"task {state['n']} of user {state['user']} of run {RUN}"
    body = json.dumps({"prompt": prompt}).encode()
    try:
        submitted = await client.request("POST", "/v1/tasks", body, _JSON)
        if submitted.status != 202:
            rec.add(started, str(submitted.status))
            return
        url = f"/v1/tasks/{submitted.json()['id']}"

        async def finished() -> Response | None:
            polled = await client.request("GET", url)
            return polled if polled.status != 200 or polled.json()["status"] in FINISHED else None

        await asyncio.sleep(state["poll"])
        left = state["timeout"] - (time.perf_counter() - started)
        polled = await eventually(finished, timeout=max(left, 0.0), every=state["poll"])
        task = polled.json() if polled.status == 200 else {}
    except NotWithin:
        rec.add(started, "task-timeout")
        return
    except TransportError as exc:
        rec.add(started, str(exc))
        return
    if polled.status != 200:
        rec.add(started, str(polled.status))
        return
    if task["status"] != "succeeded":
        rec.add(started, f"task-{task['status']}")
        return
    server = datetime.fromisoformat(task["finished_at"]) - datetime.fromisoformat(
        task["created_at"]
    )
    rec.add(started, "200", server=server.total_seconds())


SCENARIOS: dict[str, Step] = {
    "health": step_health,
    "sessions": step_sessions,
    "chat": step_chat,
    "chat-stream": step_chat_stream,
    "tasks": step_task,
}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize_ms(values: list[float]) -> dict[str, float]:
    """mean, p50, p95, p99 and max, in milliseconds."""
    ordered = sorted(values)
    mean = sum(ordered) / len(ordered) if ordered else 0.0
    out = {"mean": mean, **{f"p{q}": percentile(ordered, q) for q in (50, 95, 99)}}
    out["max"] = ordered[-1] if ordered else 0.0
    return {k: round(v * 1000, 2) for k, v in out.items()}


async def run(
    url: str,
    scenario: str,
    users: int,
    duration: float,
    *,
    requests: int | None = None,
    warmup: float = 1.0,
    api_key: str = "bench-key",
    timeout: float = 30.0,
    poll: float = 0.05,
    client: str = "raw",
) -> dict[str, Any]:
    """Run one scenario; returns the summary (see the module docstring)."""
    users = max(1, min(users, MAX_USERS))
    duration = max(0.1, min(duration, MAX_DURATION))
    step = SCENARIOS[scenario]
    headers = {"Authorization": f"Bearer {api_key}"}
    start = time.perf_counter()
    rec = Recorder(start + warmup, start + warmup + duration, requests)

    async def user(index: int) -> None:
        state: dict[str, Any] = {"user": index, "poll": poll, "timeout": timeout}
        http = CLIENTS[client](url, headers, timeout)
        try:
            while rec.more():
                await step(http, rec, state)
        finally:
            await http.aclose()

    # Requests time out, so the last ones end at most `timeout` after stop_at.
    await asyncio.wait_for(
        asyncio.gather(*(user(i) for i in range(users))), warmup + duration + 2 * timeout
    )
    elapsed = rec.last - rec.first if rec.first is not None else 0.0
    counted = sum(rec.statuses.values())
    result: dict[str, Any] = {
        "scenario": scenario,
        "url": url,
        "users": users,
        "client": client,
        "requests": counted,
        "elapsed_s": round(elapsed, 3),
        "rps": round(counted / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": summarize_ms(rec.latencies),
        "statuses": dict(sorted(rec.statuses.items())),
        "errors": sum(n for k, n in rec.statuses.items() if not k.startswith("2")),
        "cache_hits": rec.cache_hits,
    }
    for name, values in rec.extra.items():
        result[f"{name}_ms"] = summarize_ms(values)
    return result


def format_row(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    return (
        f"{result['scenario']:<22} {result['users']:>5} {result['requests']:>8} "
        f"{result['rps']:>9.1f} {lat['mean']:>8.1f} {lat['p50']:>8.1f} {lat['p95']:>8.1f} "
        f"{lat['p99']:>8.1f} {lat['max']:>8.1f} {result['errors']:>7}"
    )


HEADER = (
    f"{'scenario':<22} {'users':>5} {'requests':>8} {'RPS':>9} {'mean ms':>8} {'p50':>8} "
    f"{'p95':>8} {'p99':>8} {'max':>8} {'errors':>7}"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service's base URL")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="health")
    parser.add_argument("--users", type=int, default=32, help=f"concurrent users (<= {MAX_USERS})")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted")
    parser.add_argument("--requests", type=int, help="stop after this many counted requests")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent but not counted")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="task status polling period")
    parser.add_argument(
        "--api-key", default=os.environ.get("BENCH_API_KEY", "bench-key"), help="$BENCH_API_KEY"
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="raw",
        help="raw: lean HTTP/1.1 keep-alive client (http:// only); httpx: any URL, more CPU",
    )
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args(argv)
    coro = run(
        args.url,
        args.scenario,
        args.users,
        args.duration,
        requests=args.requests,
        warmup=args.warmup,
        api_key=args.api_key,
        timeout=args.timeout,
        poll=args.poll_ms / 1000,
        client=args.client,
    )
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    print(HEADER)
    print(format_row(result))
    print("responses:", ", ".join(f"{k}: {v}" for k, v in result["statuses"].items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["requests"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
