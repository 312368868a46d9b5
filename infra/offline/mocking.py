"""Run the Pulumi program in-process under mocks and record every resource it registers.

Used by `python -m infra render` and by the tests. Needs no Pulumi CLI, no plugins and no
credentials: `PlatformMocks` answers resource registrations with plausible outputs (ids, ARNs,
endpoints, the pulumi-eks cluster outputs) and the few invokes the program makes; any other invoke
raises `UnmockedInvokeError` so a new data source cannot slip in unanswered.

`RecordingMonitor` does not advertise resource references (passing Resource objects between
components otherwise makes runs fail at random, see shared/notes/pulumi-under-mocks.md), and keeps
each registration's type, name, parent and wire-form inputs (secrets still wrapped).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2

REDACTED = "[secret]"
ACCOUNT_ID = "123456789012"
DEFAULT_ZONE_SUFFIXES = "abcdef"

_MISSING = object()


class UnmockedInvokeError(LookupError):
    """The program called a data source the mocks do not answer."""


# --- recorded resources -------------------------------------------------------------------------


def is_secret(value: Any) -> bool:
    """Whether a wire-form value is a wrapped secret."""
    return rpc.is_rpc_secret(value)


def wrap_secret(value: Any) -> Any:
    """`value` in the wire form of a secret (for building records by hand)."""
    return rpc.wrap_rpc_secret(value)


def _number(value: float) -> int | float:
    # The wire format carries every number as a double; integral ones read better as ints.
    return int(value) if value.is_integer() else value


def unwrap(value: Any) -> Any:
    """The plain value of a wire-form value (secrets unwrapped, recursively)."""
    if isinstance(value, float):
        return _number(value)
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, Mapping):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """A wire-form value with every secret replaced by `REDACTED` ("[secret]")."""
    if isinstance(value, float):
        return _number(value)
    if is_secret(value):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


@dataclass(frozen=True)
class RecordedResource:
    """One registration: what the provider (or component) was asked to create."""

    type: str
    name: str
    urn: str
    parent_urn: str | None
    custom: bool
    provider: str | None
    raw_inputs: Mapping[str, Any]
    id: str = ""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()  # URNs: explicit depends_on and inputs' resources
    engine_urn: str = ""  # the URN the real engine gives it (full parent type chain)
    aliases: tuple[str, ...] = ()  # engine URNs it answered to before (`aliases=`)

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs with secrets unwrapped (camelCase names, numbers as floats)."""
        return unwrap(self.raw_inputs)

    def _walk(self, path: str) -> tuple[Any, bool]:
        value: Any = self.raw_inputs
        secret = False
        for part in path.split("."):
            if is_secret(value):
                secret, value = True, value["value"]
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return _MISSING, secret
        if is_secret(value):
            secret, value = True, value["value"]
        return value, secret

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """The plain value at a dotted path (`healthCheck.path`, `subnetIds.0`)."""
        value, _ = self._walk(path)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(f"{self.type} {self.name!r} has no input {path!r}")
            return default
        return unwrap(value)

    def is_secret(self, path: str) -> bool:
        """Whether the value at `path`, or a value containing it, is marked secret."""
        value, secret = self._walk(path)
        if value is _MISSING:
            raise KeyError(f"{self.type} {self.name!r} has no input {path!r}")
        return secret


@dataclass(frozen=True)
class Graph:
    """Everything one run registered, plus the stack outputs."""

    project: str
    stack: str
    resources: tuple[RecordedResource, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    secret_outputs: frozenset[str] = frozenset()

    def of_type(self, token: str) -> list[RecordedResource]:
        """Every resource of a type token, e.g. `aws:ec2/subnet:Subnet`."""
        return [r for r in self.resources if r.type == token]

    def one(self, token: str, name_contains: str | None = None) -> RecordedResource:
        """The single resource of `token` (whose name contains `name_contains`)."""
        found = [r for r in self.of_type(token) if name_contains is None or name_contains in r.name]
        if len(found) != 1:
            names = [r.name for r in found]
            raise LookupError(f"expected one {token} matching {name_contains!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource | None:
        """The resource with this URN, if recorded."""
        return next((r for r in self.resources if r.urn == urn), None)

    def parent_of(self, resource: RecordedResource) -> RecordedResource | None:
        """The resource's parent (None for children of the stack)."""
        return self.by_urn(resource.parent_urn) if resource.parent_urn else None

    def children(self, resource: RecordedResource) -> list[RecordedResource]:
        """Direct children of a (component) resource."""
        return [r for r in self.resources if r.parent_urn == resource.urn]

    def depends_on(self, resource: RecordedResource, other: RecordedResource) -> bool:
        """Whether `resource` waits for `other`, directly or through its dependencies.

        Depending on a component means waiting for all of its children (Pulumi expands it).
        """
        targets = {other.urn} | {r.urn for r in self.descendants(other)}
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn in targets:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            found = self.by_urn(urn)
            if found is not None:
                todo.extend(found.dependencies)
                todo.extend(r.urn for r in self.descendants(found))
        return False

    def descendants(self, resource: RecordedResource) -> list[RecordedResource]:
        """Children, their children, and so on."""
        found = self.children(resource)
        return found + [d for child in found for d in self.descendants(child)]

    def to_document(self) -> dict[str, Any]:
        """The resources.json document (DESIGN.md): sorted, secrets as "[secret]"."""
        resources = sorted(self.resources, key=lambda r: (r.type, r.name))
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [
                {
                    "type": r.type,
                    "name": r.name,
                    "parent": parent.name if (parent := self.parent_of(r)) else None,
                    "inputs": _sorted(redact(r.raw_inputs)),
                }
                for r in resources
            ],
            "outputs": _sorted(
                {k: REDACTED if k in self.secret_outputs else v for k, v in self.outputs.items()}
            ),
        }


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


# --- the mocks ----------------------------------------------------------------------------------


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

    def __init__(self, region: str, zones: Sequence[str] | None = None):
        self.region = region
        self.zones = list(zones) if zones is not None else [
            f"{region}{s}" for s in DEFAULT_ZONE_SUFFIXES
        ]  # fmt: skip
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
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"arn": self._arn(typ, f"launch-template/{ident}"), "latestVersion": 1}
        if typ == "docker-build:index:Image":
            digest = "sha256:" + _digest(json.dumps(plain, sort_keys=True), length=64)
            tags = plain.get("tags") or [name]
            return {"digest": digest, "ref": f"{tags[0]}@{digest}"}
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
    def call(self, args: pulumi_mocks.MockCallArgs) -> dict:
        self.invokes.append(args)
        answers = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            "aws:index/getCallerIdentity:getCallerIdentity": self._identity,
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": self._ecr_token,
            "aws:eks/getAddonVersion:getAddonVersion": self._addon_version,
        }
        answer = answers.get(args.token)
        if answer is None:
            raise UnmockedInvokeError(
                f"no mock answers invoke {args.token}; add it to PlatformMocks"
            )
        return answer(unwrap(dict(args.args)))

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

    # A plausible default version of each EKS add-on, per Kubernetes minor.
    ADDON_VERSIONS: Mapping[str, str] = {
        "coredns": "v1.12.4-eksbuild.1",
        "metrics-server": "v0.8.1-eksbuild.2",
        "kube-proxy": "v{minor}.0-eksbuild.2",
        "vpc-cni": "v1.20.4-eksbuild.1",
    }

    def _addon_version(self, args: Mapping[str, Any]) -> dict:
        addon, minor = args["addonName"], args["kubernetesVersion"]
        return {
            "id": addon,
            "addonName": addon,
            "kubernetesVersion": minor,
            "mostRecent": bool(args.get("mostRecent", False)),
            "version": self.ADDON_VERSIONS[addon].format(minor=minor),
        }

    def _zones(self, _args: Mapping[str, Any]) -> dict:
        return {
            "id": self.region,
            "names": list(self.zones),
            "zoneIds": [f"use1-az{i + 1}" for i in range(len(self.zones))],
            "groupNames": [self.region] * len(self.zones),
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


# --- the monitor --------------------------------------------------------------------------------

_REFERENCE_FEATURES = ("outputValues", "resourceReferences")


def _urn_type(urn: str) -> str:
    """The resource type of a URN (the last element of its qualified type)."""
    return urn.split("::")[2].split("$")[-1]


def engine_urn(stack: str, project: str, parent: str | None, typ: str, name: str) -> str:
    """The URN the Pulumi engine gives a resource: its parents' full type chain (the stack
    excluded), then its own type and name. The mock monitor keeps only the last parent type."""
    qualified = typ
    if parent and _urn_type(parent) != "pulumi:pulumi:Stack":
        qualified = f"{parent.split('::')[2]}${typ}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _alias_urns(
    request: Any, stack: str, project: str, parent: str | None, engine_urns: Mapping[str, str]
) -> list[str]:
    """The engine URNs a registration's aliases stand for (`parent`: the engine URN of the
    resource's own parent; `engine_urns` maps the mock URNs alias specs name to engine URNs)."""
    resolved = []
    for alias in request.aliases:
        if alias.urn:
            resolved.append(alias.urn)
            continue
        spec = alias.spec
        named = engine_urns.get(spec.parentUrn, spec.parentUrn) if spec.parentUrn else None
        alias_parent = None if spec.noParent else (named or parent)
        resolved.append(
            engine_urn(
                spec.stack or stack,
                spec.project or project,
                alias_parent,
                spec.type or request.type,
                spec.name or request.name,
            )
        )
    return resolved


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that records registrations and does not offer resource references."""

    def __init__(self, mocks: PlatformMocks):
        super().__init__(mocks)
        self.records: list[RecordedResource] = []
        self._engine_urns: dict[str, str] = {}  # mock URN -> engine URN

    def SupportsFeature(self, request):  # gRPC method name
        supported = request.id not in _REFERENCE_FEATURES
        return type("SupportsFeatureResponse", (object,), {"hasSupport": supported})

    def GetDeploymentInfo(self, request):  # gRPC method name
        info = super().GetDeploymentInfo(request)
        features = [
            f
            for f in info.supportedFeatures
            if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES
        ]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def RegisterResource(self, request):  # gRPC method name
        response = super().RegisterResource(request)
        stack, project = (
            response.urn.split("::")[0].removeprefix("urn:pulumi:"),
            response.urn.split("::")[1],
        )
        engine_parent = self._engine_urns.get(request.parent) if request.parent else None
        self._engine_urns[response.urn] = engine_urn(
            stack, project, engine_parent, request.type, request.name
        )
        if request.type != "pulumi:pulumi:Stack":
            aliases = _alias_urns(request, stack, project, engine_parent, self._engine_urns)
            parent = request.parent or None
            if parent and _urn_type(parent) == "pulumi:pulumi:Stack":
                parent = None  # children of the stack are top-level
            self.records.append(
                RecordedResource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent_urn=parent,
                    custom=bool(request.custom),
                    provider=request.provider or None,
                    raw_inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    id=response.id,
                    outputs=unwrap(self.resources[response.urn].state),
                    dependencies=tuple(request.dependencies),
                    engine_urn=self._engine_urns[response.urn],
                    aliases=tuple(aliases),
                )
            )
        return response


# --- running a program --------------------------------------------------------------------------


@dataclass
class Recorder:
    """Holds the monitor of a run, so a caller can inspect it even when the program raised."""

    monitor: RecordingMonitor | None = None

    @property
    def records(self) -> list[RecordedResource]:
        """What was registered so far."""
        return list(self.monitor.records) if self.monitor else []

    @property
    def invokes(self) -> list[pulumi_mocks.MockCallArgs]:
        """Invokes the program made so far."""
        return list(self.monitor.mocks.invokes) if self.monitor else []


def _ensure_event_loop() -> None:
    """Give this thread an open event loop: the SDK's mocks take the current one with
    `asyncio.get_event_loop()`, and a previous asyncio user (asyncio.run, pytest-asyncio) may
    have closed it or left none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            usable = not asyncio.get_event_loop().is_closed()
        except RuntimeError:
            usable = False
    if not usable:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Iterable[str] = (),
    zones: Sequence[str] | None = None,
    recorder: Recorder | None = None,
    logger: logging.Logger | None = None,
) -> Graph:
    """Run `program` under mocks with `config` (full `namespace:key` names, string values).

    Returns the recorded graph and the program's outputs; exceptions from the program (such as
    `ConfigError`) propagate unchanged.
    """
    _ensure_event_loop()
    region = config.get("aws:region") or "us-east-1"
    mocks = PlatformMocks(region=region, zones=zones)
    monitor = RecordingMonitor(mocks)
    if recorder is not None:
        recorder.monitor = monitor
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger
    )

    resolved: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    @pulumi.runtime.test
    def _program():
        outputs = program() or {}

        async def collect() -> None:
            for key, value in outputs.items():
                output = pulumi.Output.from_input(value)
                resolved[key] = unwrap(await output.future(with_unknowns=True))
                if await output.is_secret():
                    secret_outputs.add(key)

        return pulumi.Output.from_input(asyncio.ensure_future(collect()))

    _program()
    return Graph(
        project=project,
        stack=stack,
        resources=tuple(monitor.records),
        outputs=resolved,
        secret_outputs=frozenset(secret_outputs),
    )
