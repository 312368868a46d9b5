"""LoadBalancer component: the public entry point - ALB, target group, listeners, WAF.

An internet-facing ALB in the public subnets forwards to an `ip` target group on the service
port; the pods are registered into it from the cluster (TargetGroupBinding, next to the
workload). Health checks use the readiness probe, and the deregistration delay is tied to the
pods' preStop drain (`infra.contract`). HTTPS with a TLS 1.2/1.3 policy when a certificate is
configured (HTTP then only redirects); a WAF web ACL (infra/components/waf.py) in front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import contract
from infra.components import waf
from infra.components.security import allow_tcp_from_cidrs
from infra.config import LoadBalancerConfig
from infra.tags import name_tag

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # TLS 1.3 and 1.2 only


@dataclass(frozen=True)
class LoadBalancerArgs:
    """Inputs of the LoadBalancer component."""

    settings: LoadBalancerConfig  # the stack's load balancer keys
    name_prefix: str  # `<project>-<stack>`, for Name tags and WAF metric names
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    target_security_group_id: pulumi.Input[str]
    deletion_protection: bool
    access_logs: aws.lb.LoadBalancerAccessLogsArgs | None = None  # where the ALB logs requests
    target_port: int = contract.SERVICE_PORT
    health_check_path: str = contract.READY_PATH
    deregistration_delay: int = contract.DEREGISTRATION_DELAY_SECONDS


class LoadBalancer(pulumi.ComponentResource):
    """ALB + target group + listeners + WAF, and the security group path ALB -> targets."""

    dns_name: pulumi.Output[str]
    url: pulumi.Output[str]
    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]  # CloudWatch's LoadBalancer dimension
    target_group_arn: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]  # CloudWatch's TargetGroup dimension
    security_group_id: pulumi.Output[str]
    web_acl_arn: pulumi.Output[str]
    web_acl_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("agent-platform:infra:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        https = bool(args.settings.certificate_arn)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="ALB: listener ports from the allowed ranges; to the targets only",
            tags=name_tag(args.name_prefix, "alb"),
            opts=child,
        )
        # Only the ports a listener serves are open.
        allow_tcp_from_cidrs(
            f"{name}-http-in", security_group.id, args.settings.ingress_cidrs, 80, "HTTP", child
        )
        if https:
            allow_tcp_from_cidrs(
                f"{name}-https-in",
                security_group.id,
                args.settings.ingress_cidrs,
                443,
                "HTTPS",
                child,
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-targets",
            security_group_id=security_group.id,
            referenced_security_group_id=args.target_security_group_id,
            ip_protocol="tcp",
            from_port=args.target_port,
            to_port=args.target_port,
            description="Requests and health checks to the service",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-targets-from-alb",
            security_group_id=args.target_security_group_id,
            referenced_security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=args.target_port,
            to_port=args.target_port,
            description="Service port from the ALB",
            opts=child,
        )

        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            ip_address_type="ipv4",
            subnets=list(args.subnet_ids),
            security_groups=[security_group.id],
            drop_invalid_header_fields=True,
            # Longer than the longest (non-streaming) chat, which sends nothing while it waits.
            idle_timeout=args.settings.idle_timeout_seconds,
            enable_deletion_protection=args.deletion_protection,
            access_logs=args.access_logs,
            tags=name_tag(args.name_prefix, "alb"),
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-api",
            target_type="ip",
            protocol="HTTP",
            port=args.target_port,
            vpc_id=args.vpc_id,
            deregistration_delay=args.deregistration_delay,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=args.health_check_path,
                port="traffic-port",
                protocol="HTTP",
                matcher="200",
                interval=10,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags=name_tag(args.name_prefix, "api"),
            opts=child,
        )
        forward = aws.lb.ListenerDefaultActionArgs(
            type="forward", target_group_arn=target_group.arn
        )
        redirect = aws.lb.ListenerDefaultActionArgs(
            type="redirect",
            redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                port="443", protocol="HTTPS", status_code="HTTP_301"
            ),
        )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[redirect if https else forward],
            opts=child,
        )
        if https:
            aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=args.settings.certificate_arn,
                default_actions=[forward],
                opts=child,
            )

        web_acl = waf.web_acl(name, args.name_prefix, args.settings.waf_rate_limit, child)
        aws.wafv2.WebAclAssociation(
            f"{name}-waf-association",
            resource_arn=alb.arn,
            web_acl_arn=web_acl.arn,
            opts=child,
        )

        self.dns_name = alb.dns_name
        self.url = alb.dns_name.apply(lambda dns: f"{'https' if https else 'http'}://{dns}")
        self.arn = alb.arn
        self.arn_suffix = alb.arn_suffix
        self.target_group_arn = target_group.arn
        self.target_group_arn_suffix = target_group.arn_suffix
        self.security_group_id = security_group.id
        self.web_acl_arn = web_acl.arn
        self.web_acl_name = web_acl.name
        self.register_outputs(
            {
                "dnsName": self.dns_name,
                "url": self.url,
                "targetGroupArn": self.target_group_arn,
                "securityGroupId": self.security_group_id,
                "webAclArn": self.web_acl_arn,
            }
        )
