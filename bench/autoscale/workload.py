"""What users and tasks feel, per second, given the pods that are ready.

API (the load balancer spreads chats evenly over ready pods):
- a pod serves at most `cores / CPU per chat` chats/s (cores: its CPU limit, at most the one
  core a single Python process can use);
- a chat stays in flight for its response time R = model latency + CPU per chat / (1 - rho),
  rho = the pod's CPU busy share (an open-queue approximation); chats in flight per pod =
  chats/s per pod x R (Little's law);
- a pod holds at most `chat_cap` chats in flight: MAX_CONCURRENT_SESSIONS (a chat keeps its
  session active; sessions idle between a user's messages are not counted, so this is the
  optimistic side), and no more than MODEL_MAX_CONNECTIONS;
- chats beyond either limit are refused (503, or a timeout); with no ready pod all are.
Memory per pod = idle memory + memory per chat x chats in flight.

Worker (one FIFO per priority stream; a free slot takes from the high stream first):
- a ready worker runs WORKER_CONCURRENCY tasks at once, each for the profile's task latency;
- lag = tasks waiting (not yet delivered), pending = tasks running (delivered, not acked);
- CPU per worker = tasks finished per second x CPU per task;
- tasks running on a worker that is removed go back to the head of their stream (handed back).
"""

from __future__ import annotations

from dataclasses import dataclass

from .figures import PodFigures
from .profiles import Load

STREAMS = ("agent:tasks:high", "agent:tasks:normal")
MAX_RHO = 0.98  # keeps the queueing term finite at saturation


@dataclass(frozen=True)
class ApiSettings:
    cores: float  # CPU one pod can use
    chat_cap: int  # chats in flight a pod holds


@dataclass
class ApiState:
    """The API tier over one step."""

    served_per_s: float = 0.0
    refused_per_s: float = 0.0
    latency_s: float = 0.0
    in_flight_per_pod: float = 0.0
    cpu_per_pod: float = 0.0  # cores
    memory_per_pod: float = 0.0  # MiB


def api_step(load: Load, ready: int, settings: ApiSettings, figures: PodFigures) -> ApiState:
    """Serve one second of chats on `ready` pods."""
    if ready == 0:
        return ApiState(refused_per_s=load.chats_per_s, memory_per_pod=figures.base_rss_mib)
    per_pod = load.chats_per_s / ready
    cpu_limit = settings.cores / figures.chat_cpu_s
    admitted = min(per_pod, cpu_limit)
    response = _response_time(admitted, load.model_latency_s, settings, figures)
    if admitted * response > settings.chat_cap:
        # Bound by the cap: solve admitted x R(admitted) = cap (R grows with admitted).
        low, high = 0.0, admitted
        for _ in range(40):
            middle = (low + high) / 2
            fits = middle * _response_time(middle, load.model_latency_s, settings, figures)
            low, high = (middle, high) if fits <= settings.chat_cap else (low, middle)
        admitted = low
        response = _response_time(admitted, load.model_latency_s, settings, figures)
    in_flight = admitted * response
    return ApiState(
        served_per_s=admitted * ready,
        refused_per_s=(per_pod - admitted) * ready if admitted < per_pod else 0.0,
        latency_s=response,
        in_flight_per_pod=in_flight,
        cpu_per_pod=admitted * figures.chat_cpu_s,
        memory_per_pod=figures.base_rss_mib + figures.chat_rss_mib * in_flight,
    )


def _response_time(
    rate: float, latency: float, settings: ApiSettings, figures: PodFigures
) -> float:
    rho = min(rate * figures.chat_cpu_s / settings.cores, MAX_RHO)
    return latency + figures.chat_cpu_s / (1 - rho)


@dataclass
class Queue:
    """The two task streams and the workers' slots, as fluid quantities."""

    concurrency: int
    lag: dict[str, float]
    pending: dict[str, float]
    finished_per_s: float = 0.0
    cpu_per_worker: float = 0.0
    handed_back: float = 0.0

    @classmethod
    def empty(cls, concurrency: int) -> Queue:
        return cls(concurrency, dict.fromkeys(STREAMS, 0.0), dict.fromkeys(STREAMS, 0.0))

    def step(self, load: Load, ready: int, dt: float, figures: PodFigures) -> None:
        """Add arrivals, finish running tasks, start waiting ones, for `dt` seconds."""
        arrivals = load.tasks_per_s * dt
        self.lag[STREAMS[0]] += arrivals * load.high_share
        self.lag[STREAMS[1]] += arrivals * (1 - load.high_share)
        finished = 0.0
        for stream in STREAMS:
            done = min(self.pending[stream], self.pending[stream] * dt / load.task_latency_s)
            self.pending[stream] -= done
            finished += done
        free = ready * self.concurrency - sum(self.pending.values())
        for stream in STREAMS:
            start = max(0.0, min(free, self.lag[stream]))
            self.lag[stream] -= start
            self.pending[stream] += start
            free -= start
        self.finished_per_s = finished / dt
        self.cpu_per_worker = self.finished_per_s * figures.task_cpu_s / ready if ready else 0.0

    def hand_back(self, removed: int, ready_before: int) -> None:
        """Workers removed while running: their share of running tasks is queued again."""
        if removed <= 0 or ready_before <= 0:
            return
        share = min(1.0, removed / ready_before)
        for stream in STREAMS:
            back = self.pending[stream] * share
            self.pending[stream] -= back
            self.lag[stream] += back
            self.handed_back += back

    @property
    def waiting(self) -> float:
        return sum(self.lag.values())

    @property
    def running(self) -> float:
        return sum(self.pending.values())

    def signals(self) -> dict[str, float]:
        """What the redis-streams scaler reads: whole entries (the fluid model rounded)."""
        out = {}
        for stream in STREAMS:
            lag, pending = round(self.lag[stream]), round(self.pending[stream])
            out[f"stream_lag:{stream}"] = lag
            out[f"stream_pending:{stream}"] = pending
            out[f"stream_length:{stream}"] = lag + pending
        return out
