"""`python -m infra cost`: every resource of every stack is priced, billed by use or free; the
figures follow the pinned list prices; the README's table is the command's output."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from infra.ops.cost import (
    PRICED,
    CostError,
    estimate,
    load_prices,
    markdown_report,
    unclassified,
)
from tests.infra.pulumi_harness import ROOT, STACKS, graph_of, run_program

PRICES = load_prices()


def line(stack: str, resource_start: str):
    (found,) = [
        x for x in estimate(graph_of(stack), PRICES).lines if x.resource.startswith(resource_start)
    ]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_type_of_the_render_is_classified_and_priced(stack):
    graph = graph_of(stack)
    assert unclassified(r.type for r in graph.resources) == set()
    priced = estimate(graph, PRICES)  # raises CostError on a missing rate
    rates = {rate for x in priced.lines for rate in x.rates}
    assert rates <= set(PRICES.rates)
    assert {r.type for r in graph.resources} & set(PRICED) == {
        t for t in PRICED if graph.of_type(t)
    }


def test_a_new_resource_type_is_an_error_not_a_free_lunch(dev):
    extra = dataclasses.replace(dev.resources[0], type="aws:opensearch/domain:Domain", name="x")
    broken = dataclasses.replace(dev, resources=(*dev.resources, extra))
    with pytest.raises(CostError, match="aws:opensearch/domain:Domain"):
        estimate(broken, PRICES)


def test_an_instance_type_without_a_price_names_the_missing_rate():
    graph = run_program("dev", {"nodeInstanceTypes": ["m6a.large"]})
    with pytest.raises(CostError, match=r"no price for ec2\.m6a\.large in prices\.json"):
        estimate(graph, PRICES)


def test_karpenter_pools_cost_nothing_at_min_the_minimum_pods_nodes_and_their_limit_at_max():
    # api: 3 API pods x 500m = 1500m fit one c6i.large (2 vCPUs, 90% for pods; $0.085/h, the
    # cheapest allowed type) + 50 GiB gp3: 0.085 x 730 + 4 = $66.05. At max the 128 vCPU limit
    # at the highest price per vCPU ($0.0504, m7i) in its smallest size: 64 x m7i.large
    # ($0.1008/h): 64 x (73.584 + 4) = $4,965.38.
    api = line("prod", "Karpenter NodePool (api)")
    assert [round(v, 2) for v in api.monthly] == [0.0, 66.05, 4965.38]
    assert api.detail == "0/1 x c6i.large/64 x m7i.large (cpu limit 128) + 50 GiB gp3"
    workers = line("prod", "Karpenter NodePool (workers)")
    assert workers.detail.endswith("Spot at the on-demand rate")
    # dev's limit is 16 vCPUs: 8 x m7i.large at max.
    assert round(line("dev", "Karpenter NodePool (api)").monthly[2], 2) == round(8 * 77.584, 2)


def test_one_price_list_serves_the_cost_command_and_the_simulator():
    from infra import prices

    assert prices.DATA.name == "prices.json"
    assert not (ROOT / "infra" / "ops" / "prices.json").exists()
    assert prices.on_demand_hourly("t3.large", "us-east-1") * 730 == PRICES.monthly("ec2.t3.large")


def test_node_costs_follow_min_desired_and_max():
    # t3.large $0.0832/h and 50 GiB gp3 at $0.08/GB-month, 730 h: $64.736 a node.
    nodes = line("prod", "nodes")
    assert [round(v, 2) for v in nodes.monthly] == [64.74, 194.21, 647.36]  # 1, 3, 10 nodes
    assert nodes.detail == "1/3/10 x t3.large + 50 GiB gp3"


def test_multi_az_doubles_the_database_and_its_storage():
    # prod db.t3.medium $0.072/h x 2, 100 GiB x $0.115 x 2, the secret $0.40.
    assert round(line("prod", "RDS").monthly[0], 2) == round(0.072 * 730 * 2 + 200 * 0.115 + 0.4, 2)
    # dev db.t3.micro single-AZ, 20 GiB.
    assert round(line("dev", "RDS").monthly[0], 2) == 15.84


def test_fixed_lines_and_the_total():
    assert line("dev", "EKS control plane").monthly == (73.0, 73.0, 73.0)
    alb = line("prod", "ALB")  # $0.0225/h + 3 public IPv4 at $0.005/h
    assert round(alb.monthly[1], 2) == round((0.0225 + 3 * 0.005) * 730, 2)
    alarms = line("prod", "CloudWatch alarms")  # 22 alarms, the two ratios read 2 metrics each
    assert alarms.detail == "22 alarms reading 24 metrics" and round(alarms.monthly[0], 2) == 2.4
    priced = estimate(graph_of("prod"), PRICES)
    assert priced.total[1] == pytest.approx(sum(x.monthly[1] for x in priced.lines))
    assert priced.total[0] < priced.total[1] < priced.total[2]


def test_every_rate_names_its_source_and_unit():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES.as_of)
    assert PRICES.region == "us-east-1" and PRICES.hours_per_month == 730
    for name, rate in PRICES.rates.items():
        assert rate["usd"] > 0 and rate["per"] in ("hour", "month", "GB-month"), name
        assert isinstance(rate["estimate"], bool) and len(rate["source"]) > 10, name
    assert any("NAT" in item for item in PRICES.left_out)
    assert any("traffic" in item for item in PRICES.left_out)
    assert any("log ingestion" in item for item in PRICES.left_out)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_command_prints_each_resource_and_the_totals(stack):
    result = subprocess.run(
        [sys.executable, "-m", "infra", "cost", "--stack", stack],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    totals = re.search(r"^total a month\s+([\d,.]+)\s+([\d,.]+)\s+([\d,.]+)$", result.stdout, re.M)
    assert totals, result.stdout
    expected = estimate(graph_of(stack), PRICES).total
    assert [float(t.replace(",", "")) for t in totals.groups()] == [round(v, 2) for v in expected]
    assert "EKS control plane" in result.stdout and "Not included" in result.stdout


def test_a_bad_stack_config_is_one_error_line():
    result = subprocess.run(
        [sys.executable, "-m", "infra", "cost", "--stack", "nonsense"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_readme_cost_table_is_the_commands_output(stack):
    readme = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- cost:{stack} -->\n(.*?)\n<!-- /cost:{stack} -->", readme, re.S)
    assert block, f"README has no generated cost table for {stack}"
    assert block.group(1) == markdown_report(estimate(graph_of(stack), PRICES), PRICES), (
        f"stale: regenerate with `python -m infra cost --stack {stack} --markdown`"
    )
