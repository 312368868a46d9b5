"""Configuration keys of the public entry point: load balancer and WAF.

Each field is one key (see `infra.config.spec.key`); validators are the rules across keys.
"""

from __future__ import annotations

from infra.config import checks
from infra.config.sections.common import CIDRS
from infra.config.spec import (
    Bool,
    Int,
    NonEmptyNames,
    Section,
    Text,
    between,
    key,
    optional,
    rule,
)


class LoadBalancerConfig(Section, title="Load balancer"):
    ingress_cidrs: NonEmptyNames = key(
        "albIngressCidrs",
        default=["0.0.0.0/0"],
        check=CIDRS,
        help="Who may reach the ALB on ports 80 and 443.",
    )
    certificate_arn: Text = key(
        "certificateArn",
        default="",
        check=optional(
            rule(checks.acm_certificate_arn, "an ACM certificate ARN in aws:region", "not-an-arn")
        ),
        help="ACM certificate for HTTPS; HTTP then only redirects to HTTPS. Required in staging "
        "and prod (unless allowPlainHttp).",
    )
    allow_plain_http: Bool = key(
        "allowPlainHttp",
        default=False,
        help="Opt-out: let a staging or prod stack serve plain HTTP without certificateArn (for "
        "example behind a TLS-terminating proxy you run). The policy pack still requires HTTPS "
        "in prod.",
    )
    waf_rate_limit: Int = key(
        "wafRateLimit",
        default=100,
        check=between(10, 2_000_000_000),
        help="WAF rate-based rule: requests per client IP per 5 minutes before blocking.",
    )
