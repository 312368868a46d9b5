"""Recommendations: reported as warnings, never blocking an update."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import (
    UNKNOWN,
    dependencies,
    get,
    is_prod,
    is_true,
    resource_environment,
    stack_environment,
)
from .workloads import containers, deployments

LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
RDS_INSTANCE = "aws:rds/instance:Instance"
ECR_REPOSITORY = "aws:ecr/repository:Repository"


def _is_public_alb(lb) -> bool:
    kind = get(lb.props, "loadBalancerType", default="application")
    return kind == "application" and not is_true(get(lb.props, "internal"))


def _waf(args: StackValidationArgs, report: ReportViolation) -> None:
    protected = {
        lb.urn
        for assoc in args.resources
        if assoc.resource_type == WEB_ACL_ASSOCIATION
        for lb in dependencies(assoc, "resourceArn", LOAD_BALANCER)
    }
    for lb in args.resources:
        if lb.resource_type == LOAD_BALANCER and _is_public_alb(lb) and lb.urn not in protected:
            report(f"Internet-facing ALB {lb.name!r} has no WAF web ACL associated.", lb.urn)


def _invalid_headers(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LOAD_BALANCER:
        return
    if get(args.props, "loadBalancerType", default="application") != "application":
        return
    drop = get(args.props, "dropInvalidHeaderFields")
    if drop is not UNKNOWN and not is_true(drop):
        report(f"ALB {args.name!r} forwards invalid headers: set dropInvalidHeaderFields=true.")


def _flow_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    if not is_prod(stack_environment(args.resources)):
        return
    logged = {
        vpc.urn
        for log in args.resources
        if log.resource_type == FLOW_LOG
        for vpc in dependencies(log, "vpcId", VPC)
    }
    for vpc in args.resources:
        if vpc.resource_type == VPC and vpc.urn not in logged:
            report(f"prod VPC {vpc.name!r} has no flow log.", vpc.urn)


def _performance_insights(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS_INSTANCE or not is_prod(resource_environment(args.provider)):
        return
    enabled = get(args.props, "performanceInsightsEnabled")
    if enabled is not UNKNOWN and not is_true(enabled):
        report(f"prod RDS {args.name!r}: set performanceInsightsEnabled=true (7 days are free).")


def _scan_on_push(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ECR_REPOSITORY:
        return
    scan = get(args.props, "imageScanningConfiguration", "scanOnPush")
    if scan is not UNKNOWN and not is_true(scan):
        report(
            f"ECR repository {args.name!r} does not scan images: set "
            "imageScanningConfiguration.scanOnPush=true."
        )


def _read_only_root(args: StackValidationArgs, report: ReportViolation) -> None:
    for deployment in deployments(args.resources):
        for name, container in containers(deployment):
            read_only = get(container, "securityContext", "readOnlyRootFilesystem")
            if read_only is not UNKNOWN and not is_true(read_only):
                report(
                    f"Deployment {deployment.name!r} container {name!r} can write its root "
                    "filesystem: set securityContext.readOnlyRootFilesystem=true (emptyDir /tmp).",
                    deployment.urn,
                )


ALB_WAF = StackValidationPolicy(
    name="alb-waf-attached",
    description="Internet-facing ALBs have a WAF web ACL.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_waf,
)
ALB_DROP_INVALID_HEADERS = ResourceValidationPolicy(
    name="alb-drop-invalid-headers",
    description="ALBs drop requests' invalid header fields (request smuggling).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_invalid_headers,
)
PROD_FLOW_LOGS = StackValidationPolicy(
    name="prod-vpc-flow-logs",
    description="In prod, every VPC has a flow log.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_flow_logs,
)
PROD_PERFORMANCE_INSIGHTS = ResourceValidationPolicy(
    name="prod-rds-performance-insights",
    description="In prod, RDS has Performance Insights.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_performance_insights,
)
ECR_SCAN_ON_PUSH = ResourceValidationPolicy(
    name="ecr-scan-on-push",
    description="ECR scans images for vulnerabilities on push.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_scan_on_push,
)
READ_ONLY_ROOT_FILESYSTEM = StackValidationPolicy(
    name="deployment-read-only-root-filesystem",
    description="Deployment containers run with a read-only root filesystem.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_read_only_root,
)

POLICIES = [
    ALB_WAF,
    ALB_DROP_INVALID_HEADERS,
    PROD_FLOW_LOGS,
    PROD_PERFORMANCE_INSIGHTS,
    ECR_SCAN_ON_PUSH,
    READ_ONLY_ROOT_FILESYSTEM,
]
