"""SIGTERM under a steady load: readiness turns 503 first, the load balancer stops routing, every
request already sent succeeds, and the process exits inside the pod's grace period."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx

from bench.faults import SteadyLoad
from infra import contract

from .conftest import API_KEY, ServiceFactory, until

# Kubernetes sends SIGTERM after the preStop sleep; SIGKILL comes at the end of the grace period.
EXIT_WITHIN = contract.TERMINATION_GRACE_PERIOD_SECONDS - contract.PRESTOP_SLEEP_SECONDS


async def test_sigterm_during_load_fails_no_request_and_exits_in_time(
    start_service: ServiceFactory, shared_database: str, shared_redis: str
) -> None:
    proc, base = start_service(
        shared_database,
        shared_redis,
        SHUTDOWN_DRAIN_SECONDS=str(contract.SHUTDOWN_DRAIN_SECONDS),
        SHUTDOWN_TIMEOUT_SECONDS=str(contract.SHUTDOWN_TIMEOUT_SECONDS),
    )
    load = SteadyLoad(base, API_KEY, users=8, deadline_s=60)
    running = asyncio.create_task(load.run())
    await until(lambda: len(load.outcomes) >= 150)

    proc.signal(signal.SIGTERM)
    signalled = time.monotonic()
    # The load balancer's health check: once /ready fails, no new request is routed here.
    async with httpx.AsyncClient(base_url=base, timeout=5, trust_env=False) as probe:

        async def deregistered() -> bool:
            return (await probe.get("/ready")).status_code == 503

        await until(deregistered, timeout=10, every=0.05)
    load.stop_sending()
    await running

    code = await asyncio.to_thread(proc.popen.wait, EXIT_WITHIN + 5)
    exited_after = time.monotonic() - signalled
    assert code == 0, proc.output()[-3000:]
    assert exited_after <= EXIT_WITHIN
    assert load.statuses() == {200: len(load.outcomes)}, load.statuses()
    # Requests were still being sent, and served, after the signal.
    assert load.statuses(since=signalled).get(200, 0) >= 1
    assert '"msg":"agent service stopped"' in proc.output()
