"""The ALB: public, hardened, drains in step with the pods, HTTPS when configured, WAF."""

from __future__ import annotations

import pytest

from infra import contract
from infra.config import KEYS_BY_NAME
from tests.infra.pulumi_harness import STACKS, config_error, graph_of, run_program

ALB = "aws:lb/loadBalancer:LoadBalancer"
TG = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"


def test_the_alb_is_internet_facing_in_the_public_subnets(graph):
    alb = graph.one(ALB)
    assert alb.get("internal") is False
    assert alb.get("loadBalancerType") == "application"
    assert alb.get("subnets") == graph.outputs["publicSubnetIds"]
    assert alb.get("dropInvalidHeaderFields") is True


@pytest.mark.parametrize("stack", STACKS)
def test_deletion_protection_follows_the_environment(stack):
    alb = graph_of(stack).one(ALB)
    assert alb.get("enableDeletionProtection") is KEYS_BY_NAME["deletionProtection"].default(stack)


def test_the_idle_timeout_outlasts_the_longest_chat_and_the_service_keeps_connections_longer(
    graph,
):
    # A non-streaming chat is silent for up to 3 model attempts of 30 s and 2 backoffs of 10 s.
    longest_chat = 30 * 3 + 10 * 2
    assert graph.one(ALB).get("idleTimeout") == 150 > longest_chat
    config = graph.one("kubernetes:core/v1:ConfigMap").get("data")
    assert config["KEEP_ALIVE_TIMEOUT_SECONDS"] == "155"
    longer = run_program("dev", {"albIdleTimeoutSeconds": 600})
    assert longer.one(ALB).get("idleTimeout") == 600
    data = longer.one("kubernetes:core/v1:ConfigMap").get("data")
    assert int(data["KEEP_ALIVE_TIMEOUT_SECONDS"]) == 605


def test_an_idle_timeout_shorter_than_a_chat_is_refused():
    message = config_error("dev", {"albIdleTimeoutSeconds": 60})
    assert message == (
        "agent-platform:albIdleTimeoutSeconds: 60 is not valid; allowed: 120..4000 (seconds; "
        "the longest chat takes 110)"
    )


def test_the_target_group_sends_to_pod_ips_on_the_service_port_checking_readiness(graph):
    tg = graph.one(TG)
    assert (tg.get("targetType"), tg.get("protocol"), tg.get("port")) == ("ip", "HTTP", 8000)
    assert tg.get("vpcId") == graph.outputs["vpcId"]
    check = tg.get("healthCheck")
    assert check["path"] == "/ready"
    assert check["port"] == "traffic-port"
    assert check["matcher"] == "200"
    assert graph.outputs["targetGroupArn"] == tg.outputs["arn"]


def test_deregistration_outlasts_the_prestop_drain_and_ends_before_the_pod_is_killed(graph):
    delay = graph.one(TG).get("deregistrationDelay")
    assert delay == contract.DEREGISTRATION_DELAY_SECONDS
    assert contract.PRESTOP_SLEEP_SECONDS < delay < contract.TERMINATION_GRACE_PERIOD_SECONDS


def test_without_a_certificate_http_forwards_and_there_is_no_https(dev):
    graph = dev
    (listener,) = graph.of_type(LISTENER)
    assert (listener.get("port"), listener.get("protocol")) == (80, "HTTP")
    (action,) = listener.get("defaultActions")
    assert action["type"] == "forward"
    assert action["targetGroupArn"] == graph.one(TG).outputs["arn"]
    assert graph.outputs["albUrl"] == f"http://{graph.outputs['albDnsName']}"


def test_with_a_certificate_http_redirects_and_https_uses_tls_1_2_or_1_3():
    graph = run_program("prod", {"certificateArn": CERT})
    listeners = {listener.get("port"): listener for listener in graph.of_type(LISTENER)}
    assert set(listeners) == {80, 443}
    (redirect,) = listeners[80].get("defaultActions")
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}
    https = listeners[443]
    assert https.get("protocol") == "HTTPS"
    assert https.get("sslPolicy") == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https.get("certificateArn") == CERT
    assert https.get("defaultActions")[0]["type"] == "forward"
    assert graph.outputs["albUrl"].startswith("https://")


def test_the_waf_is_attached_to_the_alb(graph):
    association = graph.one("aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.get("resourceArn") == graph.one(ALB).outputs["arn"]
    assert association.get("webAclArn") == graph.one("aws:wafv2/webAcl:WebAcl").outputs["arn"]
