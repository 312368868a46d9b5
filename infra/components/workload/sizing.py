"""Targets of the workload's KEDA triggers, derived from the per-pod capacity (README "Capacity").

API: chats in flight per pod (`agent_chats_in_flight`, summed over the API pods; KEDA's
AverageValue target divides by the pods). A pod holds at most

    cap = min(MAX_CONCURRENT_SESSIONS, MODEL_MAX_CONNECTIONS)      prod: min(100, 200) = 100

chats in flight before it refuses (503) or queues on its model connections. The target keeps
HEADROOM of that cap free, so a pod absorbs a jump of 1 / 0.6 = 1.67x (the model slowing from
0.2 s to 0.33 s at the same arrival rate) while new pods start:

    target = floor(cap x HEADROOM)                                  prod: floor(100 x 0.6) = 60

A pod at its cap reports the cap, so while pods refuse each HPA round grows the ready pods by at
most cap / target = 1.67x; a higher HEADROOM (0.8) would grow by 1.25x a round and refuse for
longer, a lower one keeps more idle pods. At the 0.2 s model of the benchmark a pod at its 70%
CPU target (350m / 1.865 ms per chat = 188 chats/s) holds 188 x 0.2 = 38 chats in flight, under
60: in normal operation CPU scales the API and this trigger stays quiet; it takes over when the
model slows and CPU falls (README "How it scales").

Worker: queued (lag) + running (pending entries) tasks of both streams per worker, with
WORKER_CONCURRENCY (`workerConcurrency`) as the target: N tasks -> ceil(N / WORKER_CONCURRENCY)
workers, each with every slot busy.
"""

from __future__ import annotations

import math

# The service's default MODEL_MAX_CONNECTIONS (service/agent_service/config.py); the platform
# does not set it.
MODEL_MAX_CONNECTIONS = 200
HEADROOM = 0.6


def chats_in_flight_cap(max_concurrent_sessions: int) -> int:
    """Chats one API pod holds at most."""
    return min(max_concurrent_sessions, MODEL_MAX_CONNECTIONS)


def chats_in_flight_target(max_concurrent_sessions: int) -> int:
    """The API's chats-in-flight target per pod (at least 1)."""
    return max(1, math.floor(chats_in_flight_cap(max_concurrent_sessions) * HEADROOM))


def tasks_per_worker_target(worker_concurrency: int) -> int:
    """The worker's target of queued + running tasks per worker."""
    return worker_concurrency
