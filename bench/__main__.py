"""`python -m bench` (`make bench`): every scenario against one service process, one table, the
capacity figures, and `bench/results/<date>.json`.

Needs PostgreSQL and Redis (`make services`); makes its own database and Redis DB index, starts
the service (one uvicorn process, as in a pod), the fake model and two task workers, and stops
them all at the end. The load generator runs in its own process. Everything shares this
machine's cores, which the table and the results file say.
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
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from . import stack
from .load import HEADER, format_row

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DB = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://agent:agent@127.0.0.1:5433/agent"
)
DEFAULT_REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6390/0")
GOALS = {"chat_vs_health": 0.5, "littles_law_efficiency": 0.9, "pod_memory_mb": 512}


class Bench:
    """One run: the processes, the measurements and where the logs go."""

    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.args = args
        self.log_dir = log_dir
        self.rows: list[dict[str, Any]] = []
        self.peak_rss = 0
        self.database_url = ""
        self.redis_url = ""

    def load(
        self, label: str, service: Service, scenario: str, users: int, **extra: Any
    ) -> dict[str, Any]:
        """Run bench.load in its own process; the result with CPU use and peak RSS added."""
        args = self.args
        out = self.log_dir / f"{label.replace(' ', '_')}.json"
        cmd = [
            sys.executable,
            "-m",
            "bench.load",
            "--url",
            service.url,
            "--scenario",
            scenario,
            "--users",
            str(users),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--json",
            str(out),
        ]
        extra_procs = extra.pop("procs", [])
        generator = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        meter = stack.CpuMeter(
            {
                "service": stack.pids(service.popen.pid),
                "generator": stack.pids(generator.pid),
                "model": stack.pids(*extra.pop("model", [])),
                "workers": stack.pids(*extra_procs),
                "postgres+redis": stack.processes_named("postgres", "redis-server"),
            }
        )
        with stack.RssSampler(service.popen.pid) as rss:
            # The counted window starts after the warm-up; CPU is measured over that window.
            time.sleep(args.warmup + 0.5)
            meter.start()
            time.sleep(max(args.duration - 1.0, 0.5))
            cpu = meter.stop()
            _, stderr = generator.communicate(timeout=args.duration + 120)
        if generator.returncode not in (0, 1) or not out.exists():
            raise RuntimeError(f"load generator failed ({generator.returncode}):\n{stderr!r}")
        result = json.loads(out.read_text())
        result.update(label=label, cpu_percent=cpu, service_peak_rss_mb=rss.peak_mb)
        self.peak_rss = max(self.peak_rss, rss.peak)
        self.rows.append(result)
        print(format_row({**result, "scenario": label}), flush=True)
        return result


class Service(NamedTuple):
    popen: subprocess.Popen
    url: str
    proc: stack.Proc


def _service(bench: Bench, **env: str) -> Service:
    port = stack.free_port()
    proc = stack.start_service(
        stack.service_env(bench.database_url, bench.redis_url, port, **env), bench.log_dir
    )
    return Service(proc.popen, f"http://127.0.0.1:{port}", proc)


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    bench = Bench(args, log_dir)
    bench.database_url = stack.create_database(args.database_url)
    claim = stack.RedisClaim(args.redis_url)
    bench.redis_url = claim.url
    procs: list[stack.Proc] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        print(f"\n{'':<2}{HEADER}")
        # Phase 1: the local model (no model latency): the service's own cost per request.
        service = _service(bench)
        procs.append(service.proc)
        users = args.users
        results["health"] = bench.load("health", service, "health", users)
        results["sessions"] = bench.load("sessions (churn)", service, "sessions", users)
        results["chat"] = bench.load("chat (local)", service, "chat", users)
        results["chat_stream"] = bench.load("chat-stream (local)", service, "chat-stream", users)
        worker_env = stack.service_env(bench.database_url, bench.redis_url)
        workers = [
            stack.start_worker({**worker_env, "HOSTNAME": f"bench-w{i}"}, log_dir, f"worker{i}")
            for i in (1, 2)
        ]
        procs += workers
        results["tasks"] = bench.load(
            "tasks (2 workers)", service, "tasks", args.task_users, procs=workers
        )
        for worker in workers:
            worker.stop()
        service.proc.stop()

        # Phase 2: an OpenAI-compatible model with a fixed latency (the fake model server).
        model, model_url = stack.start_fake_model(
            log_dir, args.model_latency_ms, args.model_token_rate
        )
        procs.append(model)
        service = _service(
            bench,
            MODEL_BACKEND="openai",
            MODEL_URL=model_url,
            MODEL_MAX_CONNECTIONS=str(max(args.model_users, 200)),
        )
        procs.append(service.proc)
        latency = f"{args.model_latency_ms:g}ms"
        results["model_chat"] = bench.load(
            f"chat (model {latency})", service, "chat", args.model_users, model=[model]
        )
        results["model_chat_stream"] = bench.load(
            f"chat-stream (model {latency})",
            service,
            "chat-stream",
            args.model_users,
            model=[model],
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
        claim.release()
        stack.drop_database(args.database_url, bench.database_url)
    return {"results": results, "rows": bench.rows, "peak_rss": bench.peak_rss}


def figures(args: argparse.Namespace, run_out: dict[str, Any]) -> dict[str, Any]:
    r = run_out["results"]
    ideal = args.model_users / (args.model_latency_ms / 1000)
    model_chat = r["model_chat"]
    return {
        "chat_vs_health": round(r["chat"]["rps"] / r["health"]["rps"], 3),
        "littles_law_efficiency": round(model_chat["rps"] / ideal, 3),
        "littles_law_p95_ms": model_chat["latency_ms"]["p95"],
        "tasks_per_second": r["tasks"]["rps"],
        "task_p95_ms": r["tasks"].get("server_ms", r["tasks"]["latency_ms"])["p95"],
        "peak_rss_mb": round(run_out["peak_rss"] / 2**20, 1),
        "cores": psutil.cpu_count(),
    }


def report(args: argparse.Namespace, run_out: dict[str, Any], figs: dict[str, Any]) -> str:
    lat = args.model_latency_ms
    lines = [
        "",
        f"agent-service benchmark, {figs['cores']} cores shared by the load generator, the "
        "service (1 process), PostgreSQL, Redis, the fake model and the workers",
        "",
        f"  {HEADER}  {'svc CPU%':>8} {'all CPU%':>8}",
    ]
    for row in run_out["rows"]:
        cpu = row["cpu_percent"]
        lines.append(
            f"  {format_row({**row, 'scenario': row['label']})}  "
            f"{cpu['service']:>8.0f} {cpu['machine']:>8.0f}"
        )
    check = {True: "ok", False: "NOT MET"}
    littles_ok = figs["littles_law_efficiency"] >= 0.9 and figs["littles_law_p95_ms"] <= lat + 50
    lines += [
        "",
        f"  chat_vs_health          {figs['chat_vs_health']:.3f}   (goal >= 0.5: "
        f"{check[figs['chat_vs_health'] >= GOALS['chat_vs_health']]})",
        f"  littles_law_efficiency  {figs['littles_law_efficiency']:.3f}   "
        f"(C={args.model_users}, L={lat:g} ms; goal >= 0.9 with p95 <= {lat + 50:g} ms; "
        f"p95 {figs['littles_law_p95_ms']:.1f} ms: "
        f"{check[littles_ok]})",
        f"  tasks_per_second        {figs['tasks_per_second']:.1f}   (2 workers; p95 submit to "
        f"complete {figs['task_p95_ms']:.1f} ms)",
        f"  peak_rss_mb             {figs['peak_rss_mb']:.1f}   (service under chat load; "
        f"request 512Mi: {check[figs['peak_rss_mb'] < GOALS['pod_memory_mb']]})",
        f"  cores                   {figs['cores']}",
    ]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=DEFAULT_DB, help="PostgreSQL to make a database on")
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    p.add_argument("--duration", type=float, default=10.0, help="counted seconds per scenario")
    p.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds per scenario")
    p.add_argument("--users", type=int, default=64, help="users for the local-model scenarios")
    p.add_argument("--task-users", type=int, default=24, help="concurrent task submitters")
    p.add_argument("--model-users", type=int, default=200, help="C in Little's law")
    p.add_argument("--model-latency-ms", type=float, default=200.0, help="L in Little's law")
    p.add_argument("--model-token-rate", type=float, default=0.0, help="fake model tokens/s")
    p.add_argument("--out", type=Path, default=RESULTS, help="where <date>.json goes")
    args = p.parse_args(argv)
    args.duration = min(max(args.duration, 2.0), 120.0)
    args.warmup = min(max(args.warmup, 0.0), 30.0)
    return args


def background_cpu(seconds: float = 1.0) -> float:
    """Machine CPU busy percent before the run: other work skews every figure."""
    return psutil.cpu_percent(interval=seconds)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    idle_check = background_cpu()
    if idle_check > 20:
        print(f"warning: the machine is {idle_check:.0f}% busy before the run", file=sys.stderr)
    log_dir = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    run_out = run(args, log_dir)
    figs = figures(args, run_out)
    print(report(args, run_out, figs))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{date.today().isoformat()}.json"
    document = {
        **figs,
        "goals": GOALS,
        "machine": {
            "cores": figs["cores"],
            "cpu": platform.processor() or platform.machine(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "busy_percent_before_run": idle_check,
            "shared_by": "load generator, service, PostgreSQL, Redis, fake model, workers",
        },
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in {"database_url", "redis_url"}
        }
        | {"rate_limit": "1000000/minute", "max_concurrent_sessions": 100000},
        "scenarios": {row["label"]: row for row in run_out["rows"]},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n  results: {path}\n  logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
