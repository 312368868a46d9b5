"""`python -m bench.autoscale --stack prod --profile model-latency-spike`: replay a load profile
through a stack's rendered scaling configuration and print and plot what happens.

    --render DIR    use an existing render (`python -m infra render --out DIR`) instead of
                    rendering the stack now (~10 s)
    --overlay DIR   HPAs or ScaledObjects that replace the rendered ones for their Deployment,
                    e.g. bench/autoscale/examples/keda
    --cpu-only      keep only the CPU and memory triggers (the HPAs before KEDA), to compare
    --out FILE      the PNG (default out/autoscale/<stack>-<profile>[-overlay][-cpu-only].png)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.config import ConfigError
from infra.offline.stackfiles import StackFileError

from . import profiles, rendered, report
from .figures import PodFigures, newest_results
from .sim import Options, run

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.autoscale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stack", required=True, help="dev, staging, prod or pr-<n>")
    parser.add_argument(
        "--profile", required=True, help=f"one of {', '.join(profiles.available())}, or a file"
    )
    parser.add_argument("--render", type=Path, help="an existing render of the stack")
    parser.add_argument(
        "--overlay", type=Path, help="manifests that replace the rendered autoscalers"
    )
    parser.add_argument(
        "--cpu-only", action="store_true", help="scale on the CPU and memory triggers only"
    )
    parser.add_argument(
        "--bench-results", type=Path, help="default: the newest bench/results/*.json"
    )
    parser.add_argument("--pod-start", type=float, default=Options.pod_start_s, help="seconds")
    parser.add_argument(
        "--node-start",
        type=float,
        default=Options.node_start_s,
        help="seconds to a Ready node (default: Karpenter 60, Cluster Autoscaler 120)",
    )
    parser.add_argument("--rows", type=int, default=24, help="timeline rows printed (0: none)")
    parser.add_argument("--out", type=Path, help="the PNG")
    args = parser.parse_args(argv)
    try:
        profile = profiles.load(args.profile)
        figures = PodFigures.from_results(args.bench_results or newest_results())
        if args.render:
            setup = rendered.load(args.render, args.overlay, args.cpu_only)
        else:
            setup = rendered.render_stack(args.stack, ROOT, args.overlay, args.cpu_only)
    except (ValueError, FileNotFoundError, ConfigError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if setup.stack != args.stack:
        message = f"{args.render} is a render of {setup.stack}, not {args.stack}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    result = run(
        setup, profile, figures, Options(pod_start_s=args.pod_start, node_start_s=args.node_start)
    )
    print(report.text(result, rows=args.rows))
    suffix = ("-overlay" if args.overlay else "") + ("-cpu-only" if args.cpu_only else "")
    out = args.out or ROOT / "out" / "autoscale" / f"{args.stack}-{profile.name}{suffix}.png"
    print(f"plot: {report.plot(result, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
