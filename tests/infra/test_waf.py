"""The WAF in front of the ALB: what it blocks, in which order, and that it leaves chat content
(code, markdown, HTML) to the service."""

from __future__ import annotations

import re
import uuid

import pytest
from agent_service.api import sessions, tasks

from tests.infra.pulumi_harness import graph_of, run_program

ACL = "aws:wafv2/webAcl:WebAcl"
CRS = "AWSManagedRulesCommonRuleSet"
KBI = "AWSManagedRulesKnownBadInputsRuleSet"
CRS_BODY = ["SizeRestrictions_BODY", "EC2MetaDataSSRF_BODY", "GenericLFI_BODY",
            "GenericRFI_BODY", "CrossSiteScripting_BODY"]  # fmt: skip
KBI_BODY = ["JavaDeserializationRCE_BODY", "Log4JRCE_BODY", "ReactJSRCE_BODY"]
LABELS = [
    "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body",
    "awswaf:managed:aws:core-rule-set:EC2MetaDataSSRF_Body",
    "awswaf:managed:aws:core-rule-set:GenericLFI_Body",
    "awswaf:managed:aws:core-rule-set:GenericRFI_Body",
    "awswaf:managed:aws:core-rule-set:CrossSiteScripting_Body",
    "awswaf:managed:aws:known-bad-inputs:JavaDeserializationRCE_Body",
    "awswaf:managed:aws:known-bad-inputs:Log4JRCE_Body",
    "awswaf:managed:aws:known-bad-inputs:ReactJSRCE_Body",
]
URI_PATH = {"uriPath": {}}
AS_SENT = [{"priority": 0, "type": "NONE"}]


def rules(graph) -> dict[str, dict]:
    return {rule["name"]: rule for rule in graph.one(ACL).get("rules")}


def test_the_rules_run_in_this_order_and_block_or_defer(graph):
    acl = graph.one(ACL)
    assert acl.get("scope") == "REGIONAL"
    assert acl.get("defaultAction") == {"allow": {}}
    order = sorted(acl.get("rules"), key=lambda r: r["priority"])
    assert [(r["priority"], r["name"]) for r in order] == [
        (0, "rate-limit-per-ip"),
        (1, "AWSManagedRulesAmazonIpReputationList"),
        (2, CRS),
        (3, KBI),
        (4, "body-rules-outside-chat"),  # after the groups that add the labels it reads
        (5, "internal-paths"),
    ]
    for rule in order:
        if rule["statement"].get("managedRuleGroupStatement"):
            assert rule["overrideAction"] == {"none": {}}, rule["name"]  # the group's actions
            assert rule["statement"]["managedRuleGroupStatement"]["vendorName"] == "AWS"
        else:
            assert rule["action"] == {"block": {}}, rule["name"]
        assert rule["visibilityConfig"]["cloudwatchMetricsEnabled"] is True


def test_the_rate_limit_is_a_flood_backstop_per_ip_not_a_per_user_quota(graph):
    statement = rules(graph)["rate-limit-per-ip"]["statement"]["rateBasedStatement"]
    # 10,000 per 5 minutes: an office of a few hundred users behind one NAT address passes;
    # per-user fairness is the service's RATE_LIMIT (per API key).
    assert statement == {"limit": 10000, "aggregateKeyType": "IP", "evaluationWindowSec": 300}
    limited = run_program("dev", {"wafRateLimit": 2000})
    assert rules(limited)["rate-limit-per-ip"]["statement"]["rateBasedStatement"]["limit"] == 2000


@pytest.mark.parametrize(("group", "counted"), [(CRS, CRS_BODY), (KBI, KBI_BODY)])
def test_the_body_rules_of_the_managed_groups_only_count(graph, group, counted):
    statement = rules(graph)[group]["statement"]["managedRuleGroupStatement"]
    overrides = statement["ruleActionOverrides"]
    assert [o["name"] for o in overrides] == counted
    assert all(o["actionToUse"] == {"count": {}} for o in overrides)


def test_ip_reputation_blocks_as_aws_publishes_it(graph):
    statement = rules(graph)["AWSManagedRulesAmazonIpReputationList"]["statement"]
    assert "ruleActionOverrides" not in statement["managedRuleGroupStatement"]


def test_the_body_rules_still_block_everywhere_but_the_chat_paths(graph):
    statement = rules(graph)["body-rules-outside-chat"]["statement"]
    labelled, outside_chat = statement["andStatement"]["statements"]
    assert labelled == {
        "orStatement": {
            "statements": [{"labelMatchStatement": {"scope": "LABEL", "key": k}} for k in LABELS]
        }
    }
    regex = outside_chat["notStatement"]["statement"]["regexMatchStatement"]
    assert regex["fieldToMatch"] == URI_PATH
    assert regex["textTransformations"] == AS_SENT  # a disguised path is not a chat path
    assert regex["regexString"] == r"^/v1/(sessions/[^/]+/messages|tasks)$"


def _paths(router, method: str) -> dict[str, str]:
    """The service's own routes of `method` with concrete ids, by route name."""
    some_id = str(uuid.uuid4())
    return {
        route.name: re.sub(r"\{[^}]+\}", some_id, route.path)
        for route in router.routes
        if method in route.methods
    }


def test_the_chat_paths_are_the_services_routes_that_carry_user_text():
    chat = re.compile(rules(graph_of("dev"))["body-rules-outside-chat"]["statement"]
                      ["andStatement"]["statements"][1]["notStatement"]["statement"]
                      ["regexMatchStatement"]["regexString"])  # fmt: skip
    posts = {**_paths(sessions.router, "POST"), **_paths(tasks.router, "POST")}
    carrying_text = {p for p in posts.values() if p.endswith("/messages") or p == "/v1/tasks"}
    assert len(carrying_text) == 2  # a message to a session, a task's prompt
    assert {p for p in posts.values() if chat.match(p)} == carrying_text
    for other in ("/v1/sessions", "/v1/stats", "/v1/tasks/abc/cancel", "/v1/tasks/x",
                  "/v1/sessions/a/messages/b", "/health"):  # fmt: skip
        assert not chat.match(other), other


def test_metrics_are_not_served_to_the_internet(graph):
    statement = rules(graph)["internal-paths"]["statement"]["byteMatchStatement"]
    assert statement == {
        "positionalConstraint": "EXACTLY",
        "searchString": "/metrics",
        "fieldToMatch": URI_PATH,
        "textTransformations": AS_SENT,
    }
