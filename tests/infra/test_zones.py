"""Zones are chosen by zone ID: the ones EKS does not support are never used, whatever their
name in this account."""

from __future__ import annotations

from infra.offline.mocking import Recorder
from tests.infra.pulumi_harness import config_error, run_program

SUBNET = "aws:ec2/subnet:Subnet"
ZONES = "aws:index/getAvailabilityZones:getAvailabilityZones"

# An account where us-east-1b is the zone EKS cannot use (names map to IDs per account).
ACCOUNT_ZONES = {
    "us-east-1a": "use1-az4",
    "us-east-1b": "use1-az3",
    "us-east-1c": "use1-az6",
    "us-east-1d": "use1-az1",
    "us-east-1e": "use1-az2",
}


def test_the_zone_eks_does_not_support_is_skipped_by_its_id():
    graph = run_program("prod", zones=ACCOUNT_ZONES)
    assert graph.outputs["availabilityZones"] == ["us-east-1a", "us-east-1c", "us-east-1d"]
    used = {s.get("availabilityZone") for s in graph.of_type(SUBNET)}
    assert used == {"us-east-1a", "us-east-1c", "us-east-1d"}


def test_the_same_name_is_used_where_it_is_a_supported_zone():
    # In another account us-east-1b is a fine zone, and us-east-1a is use1-az3.
    other = {**ACCOUNT_ZONES, "us-east-1a": "use1-az3", "us-east-1b": "use1-az5"}
    graph = run_program("dev", {"azCount": 2}, zones=other)
    assert graph.outputs["availabilityZones"] == ["us-east-1b", "us-east-1c"]


def test_the_zones_are_asked_for_without_the_ids_eks_documents_as_unsupported():
    recorder = Recorder()
    run_program("dev", recorder=recorder)
    (call,) = [c for c in recorder.invokes if c.token == ZONES]
    assert call.args["excludeZoneIds"] == ["use1-az3", "usw1-az2", "cac1-az3"]
    assert call.args["state"] == "available"


def test_us_west_1_skips_usw1_az2():
    zones = {"us-west-1a": "usw1-az1", "us-west-1b": "usw1-az2", "us-west-1c": "usw1-az3"}
    graph = run_program("dev", {"aws:region": "us-west-1", "azCount": 2}, zones=zones)
    assert graph.outputs["availabilityZones"] == ["us-west-1a", "us-west-1c"]


def test_too_few_supported_zones_is_a_config_error_naming_them():
    zones = {"us-east-1a": "use1-az1", "us-east-1b": "use1-az3", "us-east-1c": "use1-az2"}
    message = config_error("prod", zones=zones)
    assert message == (
        "agent-platform:azCount: 3 is not valid; allowed: at most 2 in us-east-1 "
        "(the zones EKS supports: us-east-1a, us-east-1c)"
    )
