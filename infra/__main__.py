"""Command line of the platform package: `python -m infra render|config-docs|verify|cost`."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from infra.config import ConfigError
from infra.offline.stackfiles import StackFileError
from infra.ops.verify import add_arguments as add_verify_arguments


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m infra")
    commands = parser.add_subparsers(dest="command", required=True)
    render_cmd = commands.add_parser("render", help="write the offline plan of a stack")
    render_cmd.add_argument("--stack", required=True, help="dev, staging, prod or pr-<n>")
    render_cmd.add_argument("--out", required=True, type=Path, help="output directory")
    render_cmd.add_argument(
        "--project-dir", type=Path, default=Path(), help="where Pulumi.yaml is (default: .)"
    )
    render_cmd.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="check the EKS support calendar as of this day, YYYY-MM-DD (default: today, UTC)",
    )
    docs_cmd = commands.add_parser(
        "config-docs", help="print (or --write) Pulumi.yaml's config block and README table"
    )
    docs_cmd.add_argument(
        "--write", action="store_true", help="rewrite them in Pulumi.yaml and README.md"
    )
    add_verify_arguments(
        commands.add_parser("verify", help="check that a deployed stack is up and serving")
    )
    cost_cmd = commands.add_parser("cost", help="price a stack's resources (monthly, list prices)")
    cost_cmd.add_argument("--stack", required=True, help="dev, staging, prod or pr-<n>")
    cost_cmd.add_argument("--markdown", action="store_true", help="the README's table instead")
    cost_cmd.add_argument(
        "--project-dir", type=Path, default=Path(), help="where Pulumi.yaml is (default: .)"
    )
    args = parser.parse_args(argv)

    if args.command == "cost":
        return _cost(args)

    if args.command == "verify":
        from infra.ops.verify import VerifyError, options_from, verify

        try:
            return 0 if verify(options_from(args)) else 1
        except VerifyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    if args.command == "config-docs":
        import yaml

        from infra.config.docs import markdown_table, pulumi_yaml_config, write

        if args.write:
            for path in write(Path()):
                print(f"wrote {path}")
            return 0
        print(yaml.safe_dump({"config": pulumi_yaml_config()}, sort_keys=False, width=100))
        print(markdown_table())
        return 0

    from infra.offline.render import render, summary

    try:
        graph = render(args.stack, args.out, args.project_dir, args.today)
    except (ConfigError, StackFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(graph))
    print(f"wrote {args.out / 'resources.json'} and {args.out / 'manifests'}/")
    return 0


def _cost(args: argparse.Namespace) -> int:
    from infra.ops.cost import CostError, estimate, load_prices, markdown_report, plan, text_report

    prices = load_prices()
    try:
        priced = estimate(plan(args.stack, args.project_dir), prices)
    except (ConfigError, StackFileError, CostError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown_report(priced, prices) if args.markdown else text_report(priced, prices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
