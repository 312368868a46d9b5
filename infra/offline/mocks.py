"""`PlatformMocks`: deterministic, realistic-looking answers to registrations and invokes.

Ids, ARNs and endpoints are derived from names (a run is repeatable); the pulumi-eks components,
whose children never run under mocks, get the outputs downstream code reads. Any invoke not
answered here raises `UnmockedInvokeError`, so a new data source cannot slip in unanswered.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

from infra.offline.networks import EXAMPLE_NETWORK, NetworkLookup
from infra.offline.records import unwrap

ACCOUNT_ID = "123456789012"
DEFAULT_ZONE_SUFFIXES = "abcdef"
# Zone numbers of the default zones a..f. Names map to zone IDs differently in every account;
# here the zone EKS does not support in us-east-1 and ca-central-1 (az3) is the sixth.
DEFAULT_ZONE_NUMBERS = (1, 2, 4, 5, 6, 3)
_DIRECTIONS = {
    "east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip


def zone_id_prefix(region: str) -> str:
    """The prefix of a region's zone IDs: use1 for us-east-1, apse2 for ap-southeast-2."""
    parts = region.split("-")
    if len(parts) < 3:
        return region  # not a region: the program refuses it before asking for zones
    country, direction, number = parts[-3:]
    return f"{country}{_DIRECTIONS.get(direction, direction[:1])}{number}"


class UnmockedInvokeError(LookupError):
    """The program called a data source the mocks do not answer."""


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
}

# Type token module -> ARN service name, where they differ.
_ARN_SERVICE = {"lb": "elasticloadbalancing", "cloudwatch": "logs", "vpc": "ec2"}


class PlatformMocks(pulumi_mocks.Mocks):
    """Answers registrations and invokes with deterministic, realistic-looking values."""

    def __init__(
        self,
        region: str,
        zones: Sequence[str] | Mapping[str, str] | None = None,
        network: NetworkLookup = EXAMPLE_NETWORK,
    ):
        """`zones`: the region's zone names, or names -> zone IDs (an account's mapping)."""
        self.region = region
        prefix = zone_id_prefix(region)
        if zones is None:
            zones = [f"{region}{s}" for s in DEFAULT_ZONE_SUFFIXES]
        if not isinstance(zones, Mapping):
            numbers = DEFAULT_ZONE_NUMBERS + tuple(range(7, len(zones) + 1))
            zones = {name: f"{prefix}-az{n}" for name, n in zip(zones, numbers, strict=False)}
        self.zones: dict[str, str] = dict(sorted(zones.items()))
        self.network = network
        self.invokes: list[pulumi_mocks.MockCallArgs] = []

    # Resources -----------------------------------------------------------------------------
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        typ, name = args.typ, args.name
        prefix = _ID_PREFIX.get(typ, typ.rsplit(":", 1)[-1].lower())
        ident = f"{prefix}-{_digest(typ, name)}"
        outputs: dict[str, Any] = dict(args.inputs)
        outputs.update(self._computed(typ, name, ident, args.inputs))
        return ident, outputs

    def _arn(self, typ: str, resource: str) -> str:
        module = typ.split(":")[1].split("/")[0]
        service = _ARN_SERVICE.get(module, module)
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def _computed(self, typ: str, name: str, ident: str, inputs: Mapping) -> dict[str, Any]:
        plain = unwrap(inputs)
        region = self.region
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            lb_name = plain.get("name", name)
            suffix = f"app/{lb_name}/{_digest(name, length=16)}"
            number = int(_digest(name, length=8), 16)
            return {
                "arn": self._arn(typ, f"loadbalancer/{suffix}"),
                "arnSuffix": suffix,
                "dnsName": f"{lb_name}-{number}.{region}.elb.amazonaws.com",
                "zoneId": "Z35SXDOTRQ7X7K",
            }
        if typ == "aws:lb/targetGroup:TargetGroup":
            tg_name = plain.get("name", name)
            suffix = f"targetgroup/{tg_name}/{_digest(name, length=16)}"
            return {"arn": self._arn(typ, suffix), "arnSuffix": suffix}
        if typ == "aws:rds/instance:Instance":
            identifier = plain.get("identifier", name)
            address = f"{identifier}.c{_digest(name, length=11)}.{region}.rds.amazonaws.com"
            port = int(plain.get("port", 5432))
            computed: dict[str, Any] = {
                "address": address,
                "endpoint": f"{address}:{port}",
                "port": port,
                "arn": self._arn(typ, f"db:{identifier}"),
            }
            if plain.get("manageMasterUserPassword"):
                computed["masterUserSecrets"] = [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:"
                        f"rds!db-{_digest(name, length=8)}-{_digest(name, 'k', length=6)}",
                        "kmsKeyId": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/aws-rds",
                        "secretStatus": "active",
                    }
                ]
            return computed
        if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            group = plain.get("replicationGroupId", name)
            host = f"{group}.{_digest(name, length=6)}.{region}.cache.amazonaws.com"
            return {
                "primaryEndpointAddress": f"master.{host}",
                "readerEndpointAddress": f"replica.{host}",
                "port": int(plain.get("port", 6379)),
                "arn": self._arn(typ, f"replicationgroup:{group}"),
            }
        if typ == "random:index/randomPassword:RandomPassword":
            length = int(plain.get("length", 32))
            return {"result": (_digest(name, length=64) * 4)[:length]}
        if typ == "random:index/randomId:RandomId":
            return {"hex": _digest(name, length=int(plain.get("byteLength", 4)) * 2)}
        if typ == "eks:index:Cluster":
            return self._eks_cluster(plain.get("name", name), plain)
        if typ == "eks:index:ManagedNodeGroup":
            return {"placementGroupName": ""}
        if typ.startswith("aws:iam/"):
            kind = typ.rsplit(":", 1)[-1]
            iam_name = plain.get("name") or plain.get("namePrefix", f"{name}-") + _digest(
                name, length=7
            )
            path = {"Role": "role", "Policy": "policy"}.get(kind, kind.lower())
            return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:{path}/{iam_name}", "name": iam_name}
        if typ == "aws:sqs/queue:Queue":
            queue = plain.get("name", name)
            return {
                "arn": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue}",
                "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{queue}",
                "name": queue,
            }
        if typ == "aws:kms/key:Key":
            key_id = str(uuid.UUID(hex=_digest(name, length=32)))
            return {"arn": self._arn(typ, f"key/{key_id}"), "keyId": key_id}
        if typ == "aws:ecr/repository:Repository":
            repo = plain.get("name", name)
            return {
                "arn": self._arn(typ, f"repository/{repo}"),
                "registryId": ACCOUNT_ID,
                "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{repo}",
            }
        if typ == "aws:s3/bucket:Bucket":
            # The provider appends 26 characters to a bucket_prefix; S3 ARNs have no region.
            bucket = plain.get("bucket") or plain.get("bucketPrefix", f"{name}-") + _digest(
                name, length=26
            )
            return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "id": bucket}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"arn": self._arn(typ, f"launch-template/{ident}"), "latestVersion": 1}
        if typ == "docker-build:index:Image":
            digest = "sha256:" + _digest(json.dumps(plain, sort_keys=True), length=64)
            # As the provider: `ref` is the first tag with the digest, empty without tags.
            tags = plain.get("tags") or []
            return {"digest": digest, "ref": f"{tags[0]}@{digest}" if tags else ""}
        if typ.startswith("kubernetes:") and "metadata" in plain:
            # The provider auto-names objects without metadata.name (logical name + suffix); the
            # logical name stands in for it here, as the render names their manifests.
            metadata = dict(inputs["metadata"])
            metadata.setdefault("name", name)
            return {"metadata": metadata}
        if typ.startswith("aws:"):
            kind = typ.rsplit(":", 1)[-1].lower()
            return {"arn": self._arn(typ, f"{kind}/{ident}"), "name": plain.get("name", name)}
        return {}

    def _eks_cluster(self, cluster: str, plain: Mapping[str, Any]) -> dict[str, Any]:
        """What pulumi-eks returns (its children are never created under mocks)."""
        region = self.region
        issuer_id = _digest(cluster, length=32).upper()
        endpoint = f"https://{issuer_id}.gr7.{region}.eks.amazonaws.com"
        issuer = f"https://oidc.eks.{region}.amazonaws.com/id/{issuer_id}"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {"server": endpoint, "certificate-authority-data": "bW9jaw=="},
                }
            ],
            "contexts": [{"name": "aws", "context": {"cluster": cluster, "user": "aws"}}],
            "current-context": "aws",
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster],
                        }
                    },
                }
            ],
        }
        # Without pulumi-eks's own security groups both ids are the one EKS creates, which
        # managed nodes carry unless their launch template names others.
        eks_group = f"sg-{_digest(cluster, 'eks-cluster')}"
        skip_groups = bool(plain.get("skipDefaultSecurityGroups"))
        cluster_group = eks_group if skip_groups else f"sg-{_digest(cluster, 'cluster')}"
        node_group = eks_group if skip_groups else f"sg-{_digest(cluster, 'node')}"
        return {
            "kubeconfig": kubeconfig,
            "kubeconfigJson": json.dumps(kubeconfig),
            "clusterSecurityGroupId": cluster_group,
            "nodeSecurityGroupId": node_group,
            "oidcProviderArn": (
                f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{issuer.removeprefix('https://')}"
            ),
            "oidcProviderUrl": issuer,
            "oidcIssuer": issuer.removeprefix("https://"),
            "core": {
                "endpoint": endpoint,
                "vpcId": plain.get("vpcId"),
                "subnetIds": plain.get("subnetIds", []),
                "publicSubnetIds": plain.get("publicSubnetIds", []),
                "privateSubnetIds": plain.get("privateSubnetIds", []),
                "clusterSecurityGroupId": cluster_group,
            },
        }

    # Invokes -------------------------------------------------------------------------------
    def call(self, args: pulumi_mocks.MockCallArgs) -> dict | tuple[dict, list]:
        """An invoke's result; a lookup that finds nothing fails the invoke, as AWS's would
        (the program sees the error and the run goes on)."""
        self.invokes.append(args)
        answers = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            "aws:ec2/getSubnet:getSubnet": lambda a: dict(self.network.subnet(a["id"])),
            "aws:ec2/getRouteTables:getRouteTables": lambda a: {
                "id": a["vpcId"],
                "vpcId": a["vpcId"],
                "ids": self.network.route_table_ids(a["vpcId"]),
            },
            "aws:ec2/getRouteTable:getRouteTable": lambda a: dict(
                self.network.route_table(a["routeTableId"])
            ),
            "aws:index/getCallerIdentity:getCallerIdentity": self._identity,
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": self._ecr_token,
        }
        answer = answers.get(args.token)
        if answer is None:
            raise UnmockedInvokeError(
                f"no mock answers invoke {args.token}; add it to PlatformMocks"
            )
        try:
            return answer(unwrap(dict(args.args)))
        except LookupError as exc:
            return {}, [("id", str(exc))]

    def _ecr_token(self, args: Mapping[str, Any]) -> dict:
        registry = args.get("registryId", ACCOUNT_ID)
        password = _digest("ecr-token", registry, length=64)
        return {
            "id": self.region,
            "registryId": registry,
            "userName": "AWS",
            "password": password,
            "authorizationToken": f"QVdTOg{password}",
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
            "expiresAt": "2030-01-01T00:00:00Z",
        }

    def _zones(self, args: Mapping[str, Any]) -> dict:
        # As EC2 answers: sorted by name, IDs paired with names, exclusions applied.
        excluded_ids = set(args.get("excludeZoneIds") or ())
        excluded_names = set(args.get("excludeNames") or ())
        zones = {
            name: zone_id
            for name, zone_id in self.zones.items()
            if zone_id not in excluded_ids and name not in excluded_names
        }
        return {
            "id": self.region,
            "names": list(zones),
            "zoneIds": list(zones.values()),
            "groupNames": [self.region] * len(zones),
            "state": "available",
        }

    @staticmethod
    def _identity(_args: Mapping[str, Any]) -> dict:
        return {
            "id": ACCOUNT_ID,
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/render",
            "userId": "AIDAMOCKMOCKMOCKMOCK",
        }

    def _region(self, _args: Mapping[str, Any]) -> dict:
        return {"id": self.region, "name": self.region, "region": self.region}

    @staticmethod
    def _partition(_args: Mapping[str, Any]) -> dict:
        return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com"}
