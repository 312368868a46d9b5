"""The stand-in for a deployed stack: what `pulumi up` would create, made in moto with boto3.

Shared by conftest.py (fixtures) and the tests (names and expected values).
"""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

REGION = "us-east-1"
API_KEY = "verify-test-key"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DeployedStack:
    """What `pulumi up` would have created, made in moto with boto3."""

    def __init__(self, client, name: str):
        self.name = name
        ec2 = client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate((f"{REGION}a", f"{REGION}b"))
        ]
        self.vpc = vpc
        self.ec2, self.elbv2 = ec2, client("elbv2")

        eks = client("eks")
        eks.create_cluster(
            name=name,
            roleArn="arn:aws:iam::123456789012:role/cluster",
            resourcesVpcConfig={"subnetIds": self.subnets},
        )
        eks.create_nodegroup(
            clusterName=name,
            nodegroupName=f"{name}-general",
            nodeRole="arn:aws:iam::123456789012:role/nodes",
            subnets=self.subnets,
        )
        client("rds").create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="agent",
            ManageMasterUserPassword=True,
            AllocatedStorage=20,
            StorageEncrypted=True,
        )
        client("elasticache").create_replication_group(
            ReplicationGroupId=name,
            ReplicationGroupDescription="verify fixture",
            Engine="redis",
            CacheNodeType="cache.t3.micro",
            NumCacheClusters=1,
            TransitEncryptionEnabled=True,
            AtRestEncryptionEnabled=True,
        )
        group = ec2.create_security_group(GroupName=f"{name}-alb", Description="alb", VpcId=vpc)
        self.alb = self.elbv2.create_load_balancer(
            Name=name, Subnets=self.subnets, SecurityGroups=[group["GroupId"]], Type="application"
        )["LoadBalancers"][0]
        self.target_group = self.elbv2.create_target_group(
            Name=f"{name}-api",
            Protocol="HTTP",
            Port=8000,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/ready",
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elbv2.register_targets(
            TargetGroupArn=self.target_group, Targets=[{"Id": "10.0.0.10", "Port": 8000}]
        )

    def stopped_instance_target_group(self) -> str:
        """A target group with one running and one stopped instance.

        moto simulates no health checks: it reports registered targets healthy, except an
        instance that is stopped, which it reports `unused` (Target.InvalidState), as AWS
        does. That is the honest way to get a target that is not serving out of moto.
        """
        arn = self.elbv2.create_target_group(
            Name=f"{self.name}-inst", Protocol="HTTP", Port=8000, VpcId=self.vpc
        )["TargetGroups"][0]["TargetGroupArn"]
        instances = self.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=2, MaxCount=2, SubnetId=self.subnets[0]
        )["Instances"]
        ids = [i["InstanceId"] for i in instances]
        self.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])
        self.ec2.stop_instances(InstanceIds=[ids[1]])
        self.stopped_instance = ids[1]
        return arn

    def outputs(self, service_url: str, **changes) -> dict:
        """The stack outputs `pulumi stack output --json --show-secrets` would print."""
        outputs = {
            "region": REGION,
            "clusterName": self.name,
            "nodeGroupNames": [f"{self.name}-general"],
            "dbInstanceIdentifier": self.name,
            "cacheReplicationGroupId": self.name,
            "albDnsName": self.alb["DNSName"],
            "albUrl": f"http://{self.alb['DNSName']}",
            "serviceUrl": service_url,
            "targetGroupArn": self.target_group,
            "apiKeys": f"{API_KEY},second-key",
        }
        return {k: v for k, v in {**outputs, **changes}.items() if v is not None}
