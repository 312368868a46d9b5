"""The ALB's WAF web ACL: what a public chat API keeps out, without judging what users write.

Rules, in order (the first that blocks wins):

0. `rate-limit-per-ip` blocks a client IP above `wafRateLimit` requests per 5 minutes. A flood
   backstop: fairness per client is the service's own limit (RATE_LIMIT, per API key, shared
   in Redis); a whole office behind one NAT address must not trip it (default 10,000, ~33/s).
1. `AWSManagedRulesAmazonIpReputationList` blocks addresses AWS threat intelligence knows as
   bots, scanners and attackers.
2. `AWSManagedRulesCommonRuleSet` (OWASP-style: bad bots, oversized fields, path traversal,
   cross-site scripting, SSRF to the metadata service) and
3. `AWSManagedRulesKnownBadInputsRuleSet` (Log4Shell, Java deserialization, ...). Their rules
   on the request *body* only count and label: a chat message is user text, and code,
   markdown, HTML or a question about Log4Shell is not an attack on this service. The body
   rules' labels are from the AWS baseline rule group pages
   (https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html).
4. `body-rules-outside-chat` blocks a request carrying one of those labels unless its path is a
   chat path (a session's messages, task submission), so every other endpoint keeps them.
5. `internal-paths` blocks `/metrics` from the internet (Prometheus scrapes pods directly).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from infra import contract

w = aws.wafv2
RATE_WINDOW_SECONDS = 300
IP_REPUTATION = "AWSManagedRulesAmazonIpReputationList"
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
# Body rules of each group, counted (and labelled) instead of blocking.
BODY_RULES = {
    COMMON_RULE_SET: (
        "SizeRestrictions_BODY", "EC2MetaDataSSRF_BODY", "GenericLFI_BODY", "GenericRFI_BODY",
        "CrossSiteScripting_BODY",
    ),
    KNOWN_BAD_INPUTS_RULE_SET: ("JavaDeserializationRCE_BODY", "Log4JRCE_BODY", "ReactJSRCE_BODY"),
}  # fmt: skip
LABEL_NAMESPACES = {
    COMMON_RULE_SET: "awswaf:managed:aws:core-rule-set",
    KNOWN_BAD_INPUTS_RULE_SET: "awswaf:managed:aws:known-bad-inputs",
}
# Where users send free text: POST /v1/sessions/{id}/messages and POST /v1/tasks.
CHAT_PATHS = r"^/v1/(sessions/[^/]+/messages|tasks)$"


def body_labels() -> list[str]:
    """The labels the counted body rules add (the rule name with `_Body` for `_BODY`)."""
    return [
        f"{LABEL_NAMESPACES[group]}:{rule.removesuffix('_BODY')}_Body"
        for group, rules in BODY_RULES.items()
        for rule in rules
    ]


def _visibility(metric: str) -> w.WebAclRuleVisibilityConfigArgs:
    return w.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def _managed(priority: int, group: str, counted: Sequence[str], metric: str) -> w.WebAclRuleArgs:
    override = w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs
    use = w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs
    count = w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs
    return w.WebAclRuleArgs(
        name=group,
        priority=priority,
        override_action=w.WebAclRuleOverrideActionArgs(none=w.WebAclRuleOverrideActionNoneArgs()),
        statement=w.WebAclRuleStatementArgs(
            managed_rule_group_statement=w.WebAclRuleStatementManagedRuleGroupStatementArgs(
                name=group,
                vendor_name="AWS",
                rule_action_overrides=[
                    override(name=rule, action_to_use=use(count=count())) for rule in counted
                ]
                or None,
            )
        ),
        visibility_config=_visibility(f"{metric}-{group}"),
    )


def _block(priority: int, name: str, statement: w.WebAclRuleStatementArgs, metric: str):
    return w.WebAclRuleArgs(
        name=name,
        priority=priority,
        action=w.WebAclRuleActionArgs(block=w.WebAclRuleActionBlockArgs()),
        statement=statement,
        visibility_config=_visibility(metric),
    )


def _path(**match) -> w.WebAclRuleStatementArgs:
    """A statement on the URI path, exactly as sent (no transformation: a disguised path then
    matches nothing, so it gets the stricter treatment)."""
    none = [{"priority": 0, "type": "NONE"}]
    if "regex" in match:
        return w.WebAclRuleStatementArgs(
            regex_match_statement=w.WebAclRuleStatementRegexMatchStatementArgs(
                regex_string=match["regex"],
                field_to_match={"uri_path": {}},
                text_transformations=none,
            )
        )
    return w.WebAclRuleStatementArgs(
        byte_match_statement=w.WebAclRuleStatementByteMatchStatementArgs(
            positional_constraint="EXACTLY",
            search_string=match["exactly"],
            field_to_match={"uri_path": {}},
            text_transformations=none,
        )
    )


def rules(rate_limit: int, metric: str) -> list[w.WebAclRuleArgs]:
    """The rules of the module docstring, in priority order."""
    rate = w.WebAclRuleStatementArgs(
        rate_based_statement=w.WebAclRuleStatementRateBasedStatementArgs(
            limit=rate_limit, aggregate_key_type="IP", evaluation_window_sec=RATE_WINDOW_SECONDS
        )
    )
    labelled = w.WebAclRuleStatementArgs(
        or_statement=w.WebAclRuleStatementOrStatementArgs(
            statements=[
                w.WebAclRuleStatementArgs(
                    label_match_statement=w.WebAclRuleStatementLabelMatchStatementArgs(
                        scope="LABEL", key=label
                    )
                )
                for label in body_labels()
            ]
        )
    )
    outside_chat = w.WebAclRuleStatementArgs(
        not_statement=w.WebAclRuleStatementNotStatementArgs(statement=_path(regex=CHAT_PATHS))
    )
    body_outside_chat = w.WebAclRuleStatementArgs(
        and_statement=w.WebAclRuleStatementAndStatementArgs(statements=[labelled, outside_chat])
    )
    return [
        _block(0, "rate-limit-per-ip", rate, f"{metric}-rate-limit"),
        _managed(1, IP_REPUTATION, (), metric),
        _managed(2, COMMON_RULE_SET, BODY_RULES[COMMON_RULE_SET], metric),
        _managed(3, KNOWN_BAD_INPUTS_RULE_SET, BODY_RULES[KNOWN_BAD_INPUTS_RULE_SET], metric),
        _block(4, "body-rules-outside-chat", body_outside_chat, f"{metric}-body-outside-chat"),
        _block(5, "internal-paths", _path(exactly=contract.METRICS_PATH), f"{metric}-internal"),
    ]


def web_acl(
    name: str, name_prefix: str, rate_limit: int, opts: pulumi.ResourceOptions
) -> aws.wafv2.WebAcl:
    """The regional web ACL of the ALB (associated by the caller)."""
    metric = name_prefix.replace("_", "-")
    return aws.wafv2.WebAcl(
        f"{name}-waf",
        scope="REGIONAL",
        description="Rate limit per IP, IP reputation and AWS managed rules (body rules scoped "
        "out of the chat paths) in front of the ALB",
        default_action=w.WebAclDefaultActionArgs(allow=w.WebAclDefaultActionAllowArgs()),
        rules=rules(rate_limit, metric),
        visibility_config=w.WebAclVisibilityConfigArgs(
            cloudwatch_metrics_enabled=True,
            metric_name=f"{metric}-web-acl",
            sampled_requests_enabled=True,
        ),
        opts=opts,
    )
