"""What production exposes: HTTPS on its load balancers, a Kubernetes API not open to everyone.

The program refuses these at preview in staging and prod unless an explicit opt-out is set
(`allowPlainHttp`, a `0.0.0.0/0` allow-list typed on purpose); these policies hold prod to them
whatever the config says. Prod is decided as in production.py (the AWS provider's
`environment` default tag, else the stack's name).
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import UNKNOWN, dependencies, get, is_prod, is_true, items, stack_environment

LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


def _public_alb(lb) -> bool:
    kind = get(lb.props, "loadBalancerType", default="application")
    return kind in ("application", UNKNOWN) and not is_true(get(lb.props, "internal"))


def _alb_https(args: StackValidationArgs, report: ReportViolation) -> None:
    if not is_prod(stack_environment(args.resources)):
        return
    secured = {
        lb.urn
        for listener in args.resources
        if listener.resource_type == LISTENER
        and get(listener.props, "protocol") == "HTTPS"
        and get(listener.props, "certificateArn")
        for lb in dependencies(listener, "loadBalancerArn", LOAD_BALANCER)
    }
    for lb in args.resources:
        if lb.resource_type == LOAD_BALANCER and _public_alb(lb) and lb.urn not in secured:
            report(
                f"prod load balancer {lb.name!r} has no HTTPS listener with a certificate: set "
                "certificateArn (HTTP then only redirects to HTTPS).",
                lb.urn,
            )


def _api_endpoint(cluster) -> tuple[object, object]:
    """(public endpoint on?, its allow-list) of a pulumi-eks component or an aws:eks cluster."""
    if cluster.resource_type == EKS_CLUSTER:
        config = get(cluster.props, "vpcConfig", default={})
        return get(config, "endpointPublicAccess"), get(config, "publicAccessCidrs")
    return get(cluster.props, "endpointPublicAccess"), get(cluster.props, "publicAccessCidrs")


def _eks_api(args: StackValidationArgs, report: ReportViolation) -> None:
    if not is_prod(stack_environment(args.resources)):
        return
    for cluster in args.resources:
        if cluster.resource_type not in (EKS_COMPONENT, EKS_CLUSTER):
            continue
        public, cidrs = _api_endpoint(cluster)
        if public is UNKNOWN or cidrs is UNKNOWN or public is False:
            continue  # private only (EKS's default is public, so unset counts as public)
        if cidrs is None:
            report(
                f"prod EKS cluster {cluster.name!r} has a public API endpoint without an "
                "allow-list (EKS then admits 0.0.0.0/0): set publicAccessCidrs, or "
                "endpointPublicAccess=false.",
                cluster.urn,
            )
            continue
        open_to = sorted(OPEN_CIDRS & set(items(cidrs)))
        if open_to:
            report(
                f"prod EKS cluster {cluster.name!r} admits {', '.join(open_to)} to its "
                "Kubernetes API: list your deploy runners' CIDRs, or endpointPublicAccess=false.",
                cluster.urn,
            )


PROD_ALB_HTTPS = StackValidationPolicy(
    name="prod-alb-https",
    description="In prod, every internet-facing ALB serves HTTPS with a certificate.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_alb_https,
)
PROD_EKS_API_RESTRICTED = StackValidationPolicy(
    name="prod-eks-api-restricted",
    description="In prod, the Kubernetes API is private or public only to listed CIDRs, never "
    "to 0.0.0.0/0.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_eks_api,
)

POLICIES = [PROD_ALB_HTTPS, PROD_EKS_API_RESTRICTED]
