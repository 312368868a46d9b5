"""`python -m infra cost --stack S`: what a stack costs a month, before `pulumi up`.

Runs the program offline (as `render` does), prices every resource it registers with the list
prices pinned in infra/data/prices.json (the loader is infra/prices.py, which the autoscaling
simulator uses too), and prints a line per priced resource and the total, at the node group's
minimum, desired and maximum size; a Karpenter NodePool at no node, the nodes its Deployments'
minimum replicas need, and its cpu limit filled (see `_node_pool`). Every resource type of the
render is classified here: priced (PRICED), billed by use (USAGE: named, not priced) or without
a charge of its own (FREE); an unclassified type, or a priced one without a rate, is an error
rather than a silent zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import prices as price_list
from infra.offline.mocking import Graph, RecordedResource
from infra.prices import CostError, Prices, load_prices

__all__ = ["PRICED", "CostError", "Prices", "estimate", "load_prices", "markdown_report"]


@dataclass(frozen=True)
class Line:
    """One priced resource: USD a month with the nodes at min, desired and max."""

    resource: str
    detail: str
    monthly: tuple[float, float, float]
    rates: tuple[str, ...]

    def estimated(self, prices: Prices) -> bool:
        """Whether a rate behind the figure is an estimate."""
        return any(prices.is_estimate(r) for r in self.rates)


@dataclass(frozen=True)
class Estimate:
    """A stack's monthly cost."""

    stack: str
    lines: list[Line]
    usage: dict[str, int] = field(default_factory=dict)  # usage-billed type -> count

    @property
    def total(self) -> tuple[float, float, float]:
        """Sum of every line at min, desired and max nodes."""
        low, desired, high = (sum(line.monthly[i] for line in self.lines) for i in range(3))
        return (low, desired, high)


def _same(value: float) -> tuple[float, float, float]:
    return (value, value, value)


def _nodes(r: RecordedResource, graph: Graph, p: Prices) -> Line:
    scaling = r.get("scalingConfig")
    counts = [int(scaling[k]) for k in ("minSize", "desiredSize", "maxSize")]
    instance = r.get("instanceTypes")[0]
    volume = sum(
        m["ebs"]["volumeSize"]
        for lt in graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")
        for m in lt.get("blockDeviceMappings", [])
    )
    per_node = p.monthly(f"ec2.{instance}") + p.monthly("ebs.gp3", volume)
    spot = " (Spot, at the on-demand rate)" if r.get("capacityType", "") == "SPOT" else ""
    return Line(
        f"nodes ({r.name})",
        f"{'/'.join(map(str, counts))} x {instance} + {volume:g} GiB gp3{spot}",
        tuple(per_node * n for n in counts),  # type: ignore[arg-type]
        (f"ec2.{instance}", "ebs.gp3"),
    )


# What a node keeps from pods (kubelet reservations, daemonsets): about a tenth of its CPU.
NODE_CPU_SHARE_FOR_PODS = 0.9


def _tolerated(pod_spec: dict[str, Any], taint: dict[str, Any]) -> bool:
    for t in pod_spec.get("tolerations") or []:
        if t.get("operator") == "Exists" and t.get("key") in (None, taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value") == taint.get("value"):
            return t.get("effect") in (None, taint["effect"])
    return False


def _min_replicas(graph: Graph, deployment: str) -> int:
    """The autoscaler's minimum for `deployment` (HPA minReplicas or ScaledObject's)."""
    for r in graph.resources:
        spec = r.get("spec", {}) if r.type.startswith("kubernetes:") else {}
        if not isinstance(spec, dict) or spec.get("scaleTargetRef", {}).get("name") != deployment:
            continue
        if r.type.endswith(":HorizontalPodAutoscaler"):
            return int(spec.get("minReplicas", 1))
        if r.type.endswith(":ScaledObject"):
            return int(spec.get("minReplicaCount", 0))
    return 1


def _pool_of(graph: Graph, pod_spec: dict[str, Any]) -> str | None:
    """The NodePool Karpenter launches for this pod: the heaviest whose taints it tolerates."""
    fitting = [
        (int(pool.get("spec").get("weight", 0)), pool.get("metadata")["name"])
        for pool in graph.of_type(NODE_POOL)
        if all(
            _tolerated(pod_spec, t) for t in pool.get("spec")["template"]["spec"].get("taints", [])
        )
    ]
    return max(fitting)[1] if fitting else None


def _cpu_m(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def _node_pool(r: RecordedResource, graph: Graph, p: Prices) -> Line:
    """A Karpenter NodePool: no node at min; at desired the nodes of its cheapest allowed type
    that the minimum replicas of the Deployments it serves request (CPU); at max its cpu limit
    filled with the type of the highest price per vCPU. Spot is priced at the on-demand rate."""
    spec, name = r.get("spec"), r.get("metadata")["name"]
    requirements = spec["template"]["spec"]["requirements"]
    types = next(
        q["values"] for q in requirements if q["key"] == "node.kubernetes.io/instance-type"
    )
    capacity = next(q["values"] for q in requirements if q["key"] == "karpenter.sh/capacity-type")
    hourly = {t: price_list.on_demand_hourly(t, p.region) for t in types}
    vcpus = {t: price_list.instance_type(t).vcpu for t in types}
    cheapest = min(types, key=lambda t: (hourly[t], t))
    # Upper bound: the highest price per vCPU, in its smallest size (the most root volumes).
    priciest = max(types, key=lambda t: (round(hourly[t] / vcpus[t], 6), -vcpus[t], t))
    (node_class,) = graph.of_type(NODE_CLASS)
    volume = sum(
        int(m["ebs"]["volumeSize"].removesuffix("Gi"))
        for m in node_class.get("spec")["blockDeviceMappings"]
    )
    requested_m = sum(
        _min_replicas(graph, d.get("metadata")["name"])
        * sum(_cpu_m(c["resources"]["requests"]["cpu"]) for c in pod["containers"])
        for d in graph.of_type(DEPLOYMENT)
        if _pool_of(graph, pod := d.get("spec")["template"]["spec"]) == name
    )
    desired = math.ceil(requested_m / (vcpus[cheapest] * 1000 * NODE_CPU_SHARE_FOR_PODS))
    at_max = int(spec["limits"]["cpu"]) // vcpus[priciest]

    def cost(instance: str, nodes: int) -> float:
        return nodes * (p.monthly(f"ec2.{instance}") + p.monthly("ebs.gp3", volume))

    spot = ", Spot at the on-demand rate" if "spot" in capacity else ""
    return Line(
        f"Karpenter NodePool ({name})",
        f"0/{desired} x {cheapest}/{at_max} x {priciest} (cpu limit {spec['limits']['cpu']}) "
        f"+ {volume:g} GiB gp3{spot}",
        (0.0, cost(cheapest, desired), cost(priciest, at_max)),
        (f"ec2.{cheapest}", f"ec2.{priciest}", "ebs.gp3"),
    )


def _rds(r: RecordedResource, _g: Graph, p: Prices) -> Line:
    copies = 2 if r.get("multiAz", False) else 1
    klass, storage = r.get("instanceClass"), r.get("allocatedStorage")
    rates = [f"rds.{klass}", "rds.gp3"]
    cost = p.monthly(rates[0], copies) + p.monthly("rds.gp3", storage * copies)
    detail = f"{klass}{' Multi-AZ' if copies == 2 else ''}, {storage:g} GiB gp3"
    if r.get("manageMasterUserPassword", False):
        cost += p.monthly("secretsmanager.secret")
        rates.append("secretsmanager.secret")
        detail += ", its Secrets Manager secret"
    return Line(f"RDS ({r.get('identifier')})", detail, _same(cost), tuple(rates))


def _cache(r: RecordedResource, _g: Graph, p: Prices) -> Line:
    nodes, node_type = int(r.get("numCacheClusters")), r.get("nodeType")
    rate = f"elasticache.{node_type}"
    return Line(
        f"ElastiCache ({r.get('replicationGroupId')})",
        f"{nodes} x {node_type}",
        _same(p.monthly(rate, nodes)),
        (rate,),
    )


def _alb(r: RecordedResource, _g: Graph, p: Prices) -> Line:
    addresses = 0 if r.get("internal", False) else len(r.get("subnets"))
    cost = p.monthly("elb.alb") + p.monthly("vpc.public-ipv4", addresses)
    return Line(
        f"ALB ({r.name})",
        f"hourly, {addresses} public IPv4 (one per AZ); LCUs not included",
        _same(cost),
        ("elb.alb", "vpc.public-ipv4"),
    )


def _waf(r: RecordedResource, _g: Graph, p: Prices) -> Line:
    rules = len(r.get("rules", []))
    cost = p.monthly("waf.web-acl") + p.monthly("waf.rule", rules)
    return Line(
        f"WAF ({r.name})", f"web ACL + {rules} rules", _same(cost), ("waf.web-acl", "waf.rule")
    )


def _alarm_metrics(r: RecordedResource) -> int:
    queries = r.get("metricQueries", [])
    return sum(1 for q in queries if "metric" in q) if queries else 1


def _single(rate: str, label: Callable[[RecordedResource], str], detail: str):
    def price(r: RecordedResource, _g: Graph, p: Prices) -> Line:
        return Line(label(r), detail, _same(p.monthly(rate)), (rate,))

    return price


PRICED: dict[str, Callable[[RecordedResource, Graph, Prices], Line]] = {
    "eks:index:Cluster": _single("eks.cluster", lambda r: f"EKS control plane ({r.get('name')})",
                                 "standard support"),
    "eks:index:ManagedNodeGroup": _nodes,
    "kubernetes:karpenter.sh/v1:NodePool": _node_pool,
    "aws:ec2/natGateway:NatGateway": _single("vpc.nat-gateway", lambda r: f"NAT gateway ({r.name})",
                                             "hourly; data processing not included"),
    "aws:ec2/eip:Eip": _single("vpc.public-ipv4", lambda r: f"public IPv4 ({r.name})", "hourly"),
    "aws:lb/loadBalancer:LoadBalancer": _alb,
    "aws:rds/instance:Instance": _rds,
    "aws:elasticache/replicationGroup:ReplicationGroup": _cache,
    "aws:wafv2/webAcl:WebAcl": _waf,
    "aws:kms/key:Key": _single("kms.key", lambda r: f"KMS key ({r.name})", "customer managed"),
    "aws:cloudwatch/dashboard:Dashboard": _single(
        "cloudwatch.dashboard", lambda r: f"CloudWatch dashboard ({r.get('dashboardName')})",
        "3 per account are free"),
    "aws:amp/scraper:Scraper": _single(
        "amp.collector", lambda r: f"AMP managed collector ({r.name})",
        "hourly; samples collected not included"),
}  # fmt: skip
# Billed by use: named under "not included", never priced.
USAGE = {
    "aws:amp/workspace:Workspace": "samples ingested, stored and queried",
    "aws:amp/ruleGroupNamespace:RuleGroupNamespace": "query samples of rule evaluation",
    "aws:cloudwatch/logGroup:LogGroup": "log ingestion and storage",
    "aws:ec2/flowLog:FlowLog": "log ingestion",
    "aws:s3/bucket:Bucket": "storage and requests",
    "aws:ecr/repository:Repository": "image storage",
    "aws:sns/topic:Topic": "notifications",
    "aws:sqs/queue:Queue": "requests (Karpenter's interruption notices)",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": "vended log delivery",
}
# No charge of their own (configuration, identities, networking plumbing, Kubernetes objects and
# Helm releases that run on the priced nodes, EKS add-ons, the image build).
FREE_PREFIXES = ("agent-platform:", "kubernetes:", "pulumi:providers:", "random:", "docker-build:")
FREE = {
    "aws:amp/alertManagerDefinition:AlertManagerDefinition",
    "aws:cloudwatch/eventRule:EventRule",  # AWS service events to EventBridge are free
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/route:Route",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/vpc:Vpc",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/addon:Addon",
    "aws:elasticache/parameterGroup:ParameterGroup",
    "aws:elasticache/subnetGroup:SubnetGroup",
    "aws:iam/policy:Policy",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/serviceLinkedRole:ServiceLinkedRole",
    "aws:kms/alias:Alias",
    "aws:lb/listener:Listener",
    "aws:lb/targetGroup:TargetGroup",
    "aws:rds/parameterGroup:ParameterGroup",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:sns/topicPolicy:TopicPolicy",
    "aws:sns/topicSubscription:TopicSubscription",
    "aws:sqs/queuePolicy:QueuePolicy",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:wafv2/webAclAssociation:WebAclAssociation",
}
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
_ORDER = {token: i for i, token in enumerate(PRICED)}  # the report's reading order


def unclassified(types: Iterable[str]) -> set[str]:
    """Types the cost command would not know how to treat."""
    known = set(PRICED) | set(USAGE) | FREE | {ALARM}
    return {t for t in types if t not in known and not t.startswith(FREE_PREFIXES)}


def estimate(graph: Graph, prices: Prices) -> Estimate:
    """Price every resource of `graph` (raises CostError for what it cannot price)."""
    unknown = unclassified(r.type for r in graph.resources)
    if unknown:
        raise CostError(f"resource types the cost command does not classify: {sorted(unknown)}")
    lines = [
        PRICED[r.type](r, graph, prices)
        for r in sorted(graph.resources, key=lambda r: (_ORDER.get(r.type, 0), r.name))
        if r.type in PRICED
    ]
    alarms = graph.of_type(ALARM)
    if alarms:
        metrics = sum(_alarm_metrics(a) for a in alarms)
        lines.append(
            Line(
                "CloudWatch alarms",
                f"{len(alarms)} alarms reading {metrics} metrics",
                _same(prices.monthly("cloudwatch.alarm-metric", metrics)),
                ("cloudwatch.alarm-metric",),
            )
        )
    usage: dict[str, int] = {}
    for r in graph.resources:
        if r.type in USAGE:
            usage[r.type] = usage.get(r.type, 0) + 1
    return Estimate(graph.stack, lines, usage)


def plan(stack: str, root: Path | None = None) -> Graph:
    """The stack's program run offline, as `python -m infra render` runs it."""
    from infra.offline import mocking, stackfiles
    from infra.offline.render import quiet_logger
    from infra.stack import build

    files = stackfiles.load(root or Path.cwd(), stack)
    return mocking.run(
        build,
        project=files.project,
        stack=stack,
        config=files.config,
        secret_keys=files.secret_keys,
        logger=quiet_logger(),
    )


def _money(value: float) -> str:
    return f"{value:,.2f}"


def text_report(e: Estimate, prices: Prices) -> str:
    """The command's output: a line per resource, the totals, what is not included."""
    width = max(len(line.resource) for line in e.lines) + 2
    head = (
        f"Monthly cost of stack {e.stack}: {prices.region} on-demand list prices of "
        f"{prices.as_of}, {prices.hours_per_month} h a month, USD"
    )
    out = [head, "", f"{'resource':<{width}}{'at min':>11}{'desired':>11}{'at max':>11}  detail"]
    for line in e.lines:
        mark = " *" if line.estimated(prices) else ""
        figures = "".join(f"{_money(v):>11}" for v in line.monthly)
        out.append(f"{line.resource:<{width}}{figures}  {line.detail}{mark}")
    totals = "".join(f"{_money(v):>11}" for v in e.total)
    out += ["", f"{'total a month':<{width}}{totals}", ""]
    out.append(
        "* includes a rate no source confirmed (infra/data/prices.json marks it an estimate)"
    )
    out.append("Not included (billed by use):")
    out += [f"  - {item}" for item in prices.left_out]
    return "\n".join(out)


def markdown_report(e: Estimate, prices: Prices) -> str:
    """The README's cost table of one stack."""
    rows = [
        f"| Resource ({e.stack}) | What | $/month at min nodes | desired | max |",
        "|---|---|---|---|---|",
    ]
    for line in e.lines:
        mark = " (estimate)" if line.estimated(prices) else ""
        figures = " | ".join(_money(v) for v in line.monthly)
        rows.append(f"| {line.resource} | {line.detail}{mark} | {figures} |")
    rows.append("| **Total** | | " + " | ".join(f"**{_money(v)}**" for v in e.total) + " |")
    return "\n".join(rows)
