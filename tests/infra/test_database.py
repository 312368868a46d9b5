"""RDS PostgreSQL: private, encrypted, TLS-only, AWS-managed password, HA and protected in prod."""

from __future__ import annotations

import pytest

from infra.config import KEYS_BY_NAME
from tests.infra.pulumi_harness import STACKS, graph_of, run_program

INSTANCE = "aws:rds/instance:Instance"


def default(key: str, stack: str):
    return KEYS_BY_NAME[key].default(stack)


def test_the_database_is_private_encrypted_and_its_password_managed_by_aws(graph):
    db = graph.one(INSTANCE)
    assert db.get("publiclyAccessible") is False
    assert db.get("storageEncrypted") is True
    assert db.get("manageMasterUserPassword") is True
    assert db.get("engine") == "postgres"
    assert db.get("engineVersion") == "17"
    assert db.get("storageType") == "gp3"
    assert db.get("caCertIdentifier") == "rds-ca-rsa2048-g1"
    assert db.get("allowMajorVersionUpgrade") is False


def test_the_database_lives_in_the_isolated_subnets(graph):
    db = graph.one(INSTANCE)
    subnet_group = graph.one("aws:rds/subnetGroup:SubnetGroup")
    assert db.get("dbSubnetGroupName") == subnet_group.outputs["name"]
    assert subnet_group.get("subnetIds") == graph.outputs["databaseSubnetIds"]
    assert db.get("vpcSecurityGroupIds") == [
        graph.one("aws:ec2/securityGroup:SecurityGroup", name_contains="database").id
    ]


def test_the_parameter_group_forces_tls(graph):
    params = graph.one("aws:rds/parameterGroup:ParameterGroup")
    assert params.get("family") == "postgres17"
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"} in params.get(
        "parameters"
    )
    assert graph.one(INSTANCE).get("parameterGroupName") == params.outputs["name"]


def test_storage_autoscales_between_the_configured_sizes():
    db = graph_of("prod").one(INSTANCE)
    assert (db.get("allocatedStorage"), db.get("maxAllocatedStorage")) == (100, 500)
    assert db.get("instanceClass") == "db.t3.medium"


def test_backups_are_kept_seven_days_in_the_course_windows(graph):
    db = graph.one(INSTANCE)
    assert db.get("backupRetentionPeriod") == 7
    assert db.get("backupWindow") == "03:00-04:00"
    assert db.get("maintenanceWindow") == "sun:04:00-sun:05:00"
    assert db.get("copyTagsToSnapshot") is True


@pytest.mark.parametrize("stack", STACKS)
def test_multi_az_protection_insights_and_final_snapshot_follow_the_environment(stack):
    db = graph_of(stack).one(INSTANCE)
    assert db.get("multiAz") is default("dbMultiAz", stack)
    assert db.get("deletionProtection") is default("deletionProtection", stack)
    assert db.get("performanceInsightsEnabled") is default("dbPerformanceInsights", stack)
    assert db.get("skipFinalSnapshot") is (not default("dbFinalSnapshot", stack))


def test_prod_is_multi_az_protected_and_keeps_a_final_snapshot(prod):
    db = prod.one(INSTANCE)
    assert db.get("multiAz") is True
    assert db.get("deletionProtection") is True
    assert db.get("performanceInsightsEnabled") is True
    assert db.get("performanceInsightsRetentionPeriod") == 7
    assert db.get("skipFinalSnapshot") is False
    suffix = prod.one("random:index/randomId:RandomId").outputs["hex"]
    assert db.get("finalSnapshotIdentifier") == f"agent-platform-prod-final-{suffix}"
    assert db.get("deleteAutomatedBackups") is False


def test_dev_skips_the_final_snapshot_and_protection(dev):
    db = dev.one(INSTANCE)
    assert db.get("skipFinalSnapshot") is True
    assert "finalSnapshotIdentifier" not in db.inputs
    assert db.get("multiAz") is False
    assert db.get("deletionProtection") is False
    assert dev.of_type("random:index/randomId:RandomId") == []


def test_outputs_name_the_endpoint_and_the_managed_secret(graph):
    db = graph.one(INSTANCE)
    assert graph.outputs["dbEndpoint"] == db.outputs["endpoint"]
    assert graph.outputs["dbSecretArn"] == db.outputs["masterUserSecrets"][0]["secretArn"]
    assert graph.outputs["dbSecretArn"].startswith("arn:aws:secretsmanager:")
    assert (graph.outputs["dbPort"], graph.outputs["dbName"]) == (5432, "agent")


def test_engine_version_drives_the_parameter_group_family():
    graph = run_program("dev", {"dbEngineVersion": "16"})
    assert graph.one("aws:rds/parameterGroup:ParameterGroup").get("family") == "postgres16"
    assert graph.one(INSTANCE).get("engineVersion") == "16"


def test_the_exported_logs_go_to_groups_created_first_with_the_stacks_retention(graph):
    db = graph.one(INSTANCE)
    identifier = f"agent-platform-{graph.stack}"
    assert db.get("identifier") == identifier
    assert db.get("enabledCloudwatchLogsExports") == ["postgresql", "upgrade"]
    groups = {
        g.get("name"): g
        for g in graph.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.get("name", "").startswith("/aws/rds/")
    }
    # The names RDS writes to; without them RDS creates never-expiring groups itself.
    assert set(groups) == {
        f"/aws/rds/instance/{identifier}/postgresql",
        f"/aws/rds/instance/{identifier}/upgrade",
    }
    for group in groups.values():
        assert group.get("retentionInDays") == 90
        assert graph.depends_on(db, group), group.get("name")


def test_the_log_retention_is_configurable():
    graph = run_program("dev", {"dbLogRetentionDays": 14})
    retention = {
        g.get("retentionInDays")
        for g in graph.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.get("name", "").startswith("/aws/rds/")
    }
    assert retention == {14}
