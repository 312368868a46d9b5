"""`python -m bench` (`make bench`): every scenario against one service process, one table, the
capacity figures, and `bench/results/<date>.json`.

Needs PostgreSQL and Redis (`make services`); makes its own database and Redis DB index, starts
the service (one uvicorn process, as in a pod), the fake model and two task workers, and stops
them all at the end. The load generator runs in its own process. Everything shares this
machine's cores, which the table and the results file say, with each side's CPU use.

`/health` and chat alternate for --rounds rounds with the same generator settings, and the
ratio uses each one's median round: a machine whose speed drifts (shared hosts do) skews both
alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import timeit
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from . import sizing, stack, storage
from .load import HEADER, format_row

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DB = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://agent:agent@127.0.0.1:5433/agent"
)
DEFAULT_REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6390/0")
GOALS = {
    "chat_vs_health": 0.25,  # 0.5 in the long run
    "littles_law_efficiency": 0.9,
    "pod_memory_request_mb": 512,
    "peak_rss_mb": 256,
    "sse_vs_json_chat": 0.8,
}
SETTINGS_NOTE = {
    "RATE_LIMIT": "1000000/minute (the benchmark measures work, not refusals)",
    "MAX_CONCURRENT_SESSIONS": "100000",
    "LOG_LEVEL": "INFO (one JSON access line per request, to a file)",
}


class Service(NamedTuple):
    proc: stack.Proc
    url: str


class Bench:
    """One run: the processes, the measurements and where the logs go."""

    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.args = args
        self.log_dir = log_dir
        self.rows: list[dict[str, Any]] = []
        self.chat_peak_rss = 0
        self.database_url = ""
        self.redis_url = ""

    def service(self, **env: str) -> Service:
        port = stack.free_port()
        environ = stack.service_env(self.database_url, self.redis_url, port, **env)
        return Service(stack.start_service(environ, self.log_dir), f"http://127.0.0.1:{port}")

    def load(
        self,
        label: str,
        service: Service,
        scenario: str,
        users: int,
        *,
        model: stack.Proc | None = None,
        workers: tuple[stack.Proc, ...] = (),
    ) -> dict[str, Any]:
        """Run bench.load in its own process; its result plus CPU use and peak RSS."""
        args = self.args
        out = self.log_dir / f"{label.replace(' ', '_')}-{len(self.rows)}.json"
        cmd = [sys.executable, "-m", "bench.load", "--url", service.url, "--scenario", scenario]
        cmd += ["--users", str(users), "--duration", str(args.duration)]
        cmd += ["--warmup", str(args.warmup), "--json", str(out)]
        generator = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        meter = stack.CpuMeter(
            {
                "service": stack.pids(service.proc),
                "generator": stack.pids(generator.pid),
                "fake model": stack.pids(*([model] if model else [])),
                "workers": stack.pids(*workers),
                "postgres+redis": stack.processes_named("postgres", "redis-server"),
            }
        )
        with stack.RssSampler(service.proc.pid) as rss:
            # CPU is measured inside the generator's counted window (after its warm-up).
            time.sleep(args.warmup + 0.5)
            meter.start()
            time.sleep(max(args.duration - 1.0, 0.5))
            cpu = meter.stop()
            _, stderr = generator.communicate(timeout=args.duration + 120)
        if generator.returncode not in (0, 1) or not out.exists():
            raise RuntimeError(f"load generator failed ({generator.returncode}):\n{stderr!r}")
        result = json.loads(out.read_text())
        ours = sum(v for k, v in cpu.items() if k != "machine")
        cpu["other"] = round(max(cpu["machine"] * psutil.cpu_count() - ours, 0.0), 1)
        result.update(label=label, cpu_percent=cpu, service_peak_rss_mb=rss.peak_mb)
        if result["rps"]:
            result["service_cpu_us_per_request"] = round(cpu["service"] / 100 / result["rps"] * 1e6)
        if scenario.startswith("chat"):
            self.chat_peak_rss = max(self.chat_peak_rss, rss.peak)
        self.rows.append(result)
        print(f"  {format_row({**result, 'scenario': label})}", flush=True)
        return result


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median RPS (the upper one of an even count), with all rounds' RPS."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    return {**ordered[len(ordered) // 2], "rounds_rps": [r["rps"] for r in rounds]}


def run(args: argparse.Namespace, log_dir: Path) -> tuple[dict[str, dict], list[dict], float]:
    """Every scenario; (results by key, table rows, peak RSS under chat load in bytes)."""
    bench = Bench(args, log_dir)
    bench.database_url = storage.create_database(args.database_url)
    claim = storage.RedisClaim(args.redis_url)
    bench.redis_url = claim.url
    procs: list[stack.Proc] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        print(f"\n  {HEADER}", flush=True)
        # Phase 1, the local model (no model latency): the service's own cost per request.
        service = bench.service()
        procs.append(service.proc)
        health, chat = [], []
        for _ in range(args.rounds):
            health.append(bench.load("health", service, "health", args.users))
            chat.append(bench.load("chat (local)", service, "chat", args.users))
        results["health"], results["chat"] = _median_round(health), _median_round(chat)
        results["sessions"] = bench.load("sessions (churn)", service, "sessions", args.users)
        results["chat_stream"] = bench.load(
            "chat-stream (local)", service, "chat-stream", args.users
        )
        worker_env = stack.service_env(bench.database_url, bench.redis_url)
        workers = tuple(
            stack.start_worker({**worker_env, "HOSTNAME": f"bench-w{i}"}, log_dir, f"worker{i}")
            for i in (1, 2)
        )
        procs += workers
        results["tasks"] = bench.load(
            "tasks (2 workers)", service, "tasks", args.task_users, workers=workers
        )
        for proc in (*workers, service.proc):
            proc.stop()

        # Phase 2, an OpenAI-compatible model with a fixed latency (the fake model server).
        model, model_url = stack.start_fake_model(
            log_dir, args.model_latency_ms, args.model_token_rate
        )
        procs.append(model)
        service = bench.service(
            MODEL_BACKEND="openai",
            MODEL_URL=model_url,
            MODEL_MAX_CONNECTIONS=str(max(args.model_users, 200)),
        )
        procs.append(service.proc)
        latency = f"{args.model_latency_ms:g}ms"
        users = args.model_users
        results["model_chat"] = bench.load(
            f"chat (model {latency})", service, "chat", users, model=model
        )
        results["model_chat_stream"] = bench.load(
            f"chat-stream (model {latency})", service, "chat-stream", users, model=model
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
        claim.release()
        storage.drop_database(args.database_url, bench.database_url)
    return results, bench.rows, bench.chat_peak_rss


def figures(args: argparse.Namespace, results: dict[str, dict], peak_rss: float) -> dict:
    ideal = args.model_users / (args.model_latency_ms / 1000)
    model_chat, tasks = results["model_chat"], results["tasks"]
    chat_us = results["chat"]["service_cpu_us_per_request"]
    return {
        "chat_vs_health": round(results["chat"]["rps"] / results["health"]["rps"], 3),
        "chat_cpu_us": chat_us,
        "health_cpu_us": results["health"]["service_cpu_us_per_request"],
        "chat_vs_health_cpu": round(results["health"]["service_cpu_us_per_request"] / chat_us, 3),
        **sizing.figures(chat_us),
        "sse_vs_json_chat": round(
            results["model_chat_stream"]["rps"] / max(model_chat["rps"], 1e-9), 3
        ),
        "littles_law_efficiency": round(model_chat["rps"] / ideal, 3),
        "littles_law_p95_ms": model_chat["latency_ms"]["p95"],
        "tasks_per_second": tasks["rps"],
        # Submit to complete from the service's own timestamps (created_at -> finished_at):
        # independent of how often the client polls.
        "task_p95_ms": tasks.get("server_ms", tasks["latency_ms"])["p95"],
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "cores": psutil.cpu_count(),
    }


def report(args: argparse.Namespace, rows: list[dict], figs: dict) -> str:
    lat = args.model_latency_ms
    ok = {True: "met", False: "NOT MET"}
    littles_ok = figs["littles_law_efficiency"] >= 0.9 and figs["littles_law_p95_ms"] <= lat + 50
    lines = [
        "",
        f"agent-service benchmark: {figs['cores']} cores shared by the load generator, the "
        "service (one uvicorn process), PostgreSQL, Redis, the fake model and the workers",
        "",
        f"  {HEADER} {'svc CPU%':>8} {'svc us/req':>10} {'all CPU%':>8}",
    ]
    for row in rows:
        cpu = row["cpu_percent"]
        lines.append(
            f"  {format_row({**row, 'scenario': row['label']})} {cpu['service']:>8.0f} "
            f"{row.get('service_cpu_us_per_request', 0):>10} {cpu['machine']:>8.0f}"
        )
    lines += [
        "",
        f"  chat_vs_health          {figs['chat_vs_health']:>8.3f}  goal >= 0.25: "
        f"{ok[figs['chat_vs_health'] >= GOALS['chat_vs_health']]} (median of "
        f"{args.rounds} alternating rounds each)",
        f"  littles_law_efficiency  {figs['littles_law_efficiency']:>8.3f}  C={args.model_users}, "
        f"L={lat:g} ms, p95 {figs['littles_law_p95_ms']:.0f} ms; goal >= 0.9 with p95 <= "
        f"{lat + 50:g} ms: {ok[littles_ok]}",
        f"  tasks_per_second        {figs['tasks_per_second']:>8.1f}  2 workers; p95 submit to "
        f"complete {figs['task_p95_ms']:.0f} ms",
        f"  sse_vs_json_chat        {figs['sse_vs_json_chat']:>8.3f}  chat-stream RPS over chat "
        f"RPS with the model; goal >= 0.8: {ok[figs['sse_vs_json_chat'] >= 0.8]}",
        f"  peak_rss_mb             {figs['peak_rss_mb']:>8.1f}  service under chat load (up to "
        f"{args.model_users} concurrent); goal < 256: {ok[figs['peak_rss_mb'] < 256]}",
        f"  chat CPU per request    {figs['chat_cpu_us']:>8} us  /health "
        f"{figs['health_cpu_us']} us (service CPU, median rounds; ratio "
        f"{figs['chat_vs_health_cpu']:.3f})",
        f"  chats per second per vCPU {figs['chats_per_second_per_vcpu']:>6}  (1 / chat CPU: what "
        "one pod, one process, can serve at 100% CPU)",
        f"  service CPU dollars per million chats  ${figs['service_cpu_usd_per_million_chats']:.4f}"
        f"  ({figs['node_type']} at ${figs['node_usd_per_hour']}/h for {figs['node_vcpus']} vCPUs, "
        "infra/data/prices.json)",
        f"  cores                   {figs['cores']:>8}",
    ]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_DB, help="PostgreSQL to make a database on")
    p.add_argument("--redis-url", default=DEFAULT_REDIS, help="Redis (a free DB index is used)")
    p.add_argument("--duration", type=float, default=8.0, help="counted seconds per scenario")
    p.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds per scenario")
    p.add_argument("--rounds", type=int, default=3, help="alternating health/chat rounds")
    p.add_argument("--users", type=int, default=64, help="users for the local-model scenarios")
    p.add_argument("--task-users", type=int, default=24, help="concurrent task submitters")
    p.add_argument("--model-users", type=int, default=200, help="C in Little's law")
    p.add_argument("--model-latency-ms", type=float, default=200.0, help="L in Little's law")
    p.add_argument("--model-token-rate", type=float, default=0.0, help="fake model tokens/s")
    p.add_argument("--out", type=Path, default=RESULTS, help="where <date>.json goes")
    args = p.parse_args(argv)
    args.duration = min(max(args.duration, 2.0), 120.0)
    args.warmup = min(max(args.warmup, 0.0), 30.0)
    args.rounds = min(max(args.rounds, 1), 5)
    return args


def yardstick_us() -> float:
    """CPython speed: microseconds per sum(range(1000)). Compares machines, and shows a shared
    host slowing down during a run (measured before and after it)."""
    return round(min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6, 2)


def machine(busy_before: float) -> dict[str, Any]:
    return {
        "cores": psutil.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "python_sum_range_1000_us": {"before": yardstick_us()},
        "busy_percent_before_run": busy_before,
        "shared_by": "load generator, service, PostgreSQL, Redis, fake model, workers",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    busy = psutil.cpu_percent(interval=1.0)
    if busy > 20:
        print(f"warning: the machine is {busy:.0f}% busy before the run", file=sys.stderr)
    log_dir = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    about = machine(busy)
    results, rows, peak_rss = run(args, log_dir)
    about["python_sum_range_1000_us"]["after"] = yardstick_us()
    figs = figures(args, results, peak_rss)
    print(report(args, rows, figs))
    speed = about["python_sum_range_1000_us"]
    print(
        f"  machine speed           sum(range(1000)) {speed['before']} us before the run, "
        f"{speed['after']} us after (a shared host that slows down moves every figure)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{date.today().isoformat()}.json"
    settings = {k: v for k, v in vars(args).items() if k not in {"database_url", "redis_url"}}
    settings["out"] = str(settings["out"])
    document = {
        **figs,
        "goals": GOALS,
        "machine": about,
        "settings": settings,
        "service_settings": SETTINGS_NOTE,
        "scenarios": results,
        "table": rows,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n  results: {path}\n  logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
