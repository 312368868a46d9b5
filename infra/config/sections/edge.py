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

# The longest a chat may keep its connection silent: the service's model call timeout
# (MODEL_TIMEOUT, 30 s) for the first attempt and each of MODEL_MAX_RETRIES (2) retries, and up
# to 10 s of backoff (Retry-After, capped) before each retry. The platform leaves those settings
# at the service's defaults (service/agent_service/config.py).
LONGEST_CHAT_SECONDS = 30 * (1 + 2) + 10 * 2
IDLE_TIMEOUT_MARGIN_SECONDS = 10  # database and cache calls around the model call
# The service closes idle keep-alive connections this much later than the ALB does: the ALB
# must never reuse a connection the service already closed (a 502 for the client).
KEEPALIVE_MARGIN_SECONDS = 5
MAX_IDLE_TIMEOUT_SECONDS = 4000  # the ALB's range is 1-4000


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
    idle_timeout_seconds: Int = key(
        "albIdleTimeoutSeconds",
        default=150,
        check=rule(
            lambda v: (
                LONGEST_CHAT_SECONDS + IDLE_TIMEOUT_MARGIN_SECONDS <= v <= MAX_IDLE_TIMEOUT_SECONDS
            ),
            f"{LONGEST_CHAT_SECONDS + IDLE_TIMEOUT_MARGIN_SECONDS}..{MAX_IDLE_TIMEOUT_SECONDS} "
            f"(seconds; the longest chat takes {LONGEST_CHAT_SECONDS})",
            LONGEST_CHAT_SECONDS + IDLE_TIMEOUT_MARGIN_SECONDS - 1,
            MAX_IDLE_TIMEOUT_SECONDS + 1,
        ),
        help="ALB idle timeout: a connection silent this long is closed. Above the longest "
        "chat; the service's HTTP keep-alive timeout (KEEP_ALIVE_TIMEOUT_SECONDS) is set "
        f"{KEEPALIVE_MARGIN_SECONDS} s longer.",
    )
    waf_rate_limit: Int = key(
        "wafRateLimit",
        default=10_000,
        check=between(10, 2_000_000_000),
        help="WAF rate-based rule: requests per client IP per 5 minutes before blocking. A flood "
        "backstop for a whole NAT'd office; fairness per client is the service's RATE_LIMIT.",
    )

    @property
    def keepalive_timeout_seconds(self) -> int:
        """The service's HTTP keep-alive timeout: always longer than the ALB's idle timeout."""
        return self.idle_timeout_seconds + KEEPALIVE_MARGIN_SECONDS
