"""Encryption at rest (RDS, ElastiCache, EKS secrets, ECR) and in transit (Redis, RDS, HTTPS)."""

from __future__ import annotations

from collections import defaultdict

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import UNKNOWN, dependencies, get, is_true, items

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
RDS_CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
LISTENER = "aws:lb/listener:Listener"

ECR_ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")
# The parameter that makes each engine refuse unencrypted connections, and its "on" values.
SSL_PARAMETERS = {
    "postgres": ("rds.force_ssl", {"1"}),
    "aurora-postgresql": ("rds.force_ssl", {"1"}),
    "mysql": ("require_secure_transport", {"1", "ON"}),
    "mariadb": ("require_secure_transport", {"1", "ON"}),
    "aurora-mysql": ("require_secure_transport", {"1", "ON"}),
}
# ALB security policies that allow TLS 1.2 and newer only.
TLS12_POLICY_PREFIXES = (
    "ELBSecurityPolicy-TLS13-",
    "ELBSecurityPolicy-TLS-1-2-",
    "ELBSecurityPolicy-FS-1-2-",
)


def _rds_storage(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (RDS_INSTANCE, RDS_CLUSTER):
        return
    encrypted = get(args.props, "storageEncrypted")
    if encrypted is not UNKNOWN and not is_true(encrypted):
        report(f"RDS {args.name!r} stores data unencrypted: set storageEncrypted=true.")


def _cache_at_rest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == CACHE_CLUSTER and not get(args.props, "replicationGroupId"):
        report(
            f"ElastiCache cluster {args.name!r} cannot be encrypted at rest on its own: "
            "create a replication group with atRestEncryptionEnabled=true.",
        )
    if args.resource_type != REPLICATION_GROUP:
        return
    enabled = get(args.props, "atRestEncryptionEnabled")
    if enabled is not UNKNOWN and not is_true(enabled):
        report(
            f"ElastiCache replication group {args.name!r} is not encrypted at rest: "
            "set atRestEncryptionEnabled=true.",
        )


def _eks_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == EKS_COMPONENT:
        key = get(args.props, "encryptionConfigKeyArn")
        if key is not UNKNOWN and not key:
            report(
                f"EKS cluster {args.name!r} does not envelope-encrypt Kubernetes secrets: "
                "set encryptionConfigKeyArn to a KMS key.",
            )
    elif args.resource_type == EKS_CLUSTER:
        config = get(args.props, "encryptionConfig")
        if config is UNKNOWN:
            return
        resources = items(get(config, "resources", default=[]))
        key = get(config, "provider", "keyArn")
        if UNKNOWN in resources or key is UNKNOWN:
            return
        if "secrets" not in resources or not key:
            report(
                f"EKS cluster {args.name!r} does not envelope-encrypt Kubernetes secrets: "
                "set encryptionConfig with resources ['secrets'] and provider.keyArn.",
            )


def _ecr(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ECR_REPOSITORY:
        return
    configurations = get(args.props, "encryptionConfigurations", default=[])
    if configurations is UNKNOWN:
        return
    types = [get(c, "encryptionType") for c in items(configurations)]
    if UNKNOWN in types:
        return
    if not types or any(t not in ECR_ENCRYPTION_TYPES for t in types):
        report(
            f"ECR repository {args.name!r} does not declare its encryption at rest: set "
            "encryptionConfigurations with encryptionType one of "
            f"{', '.join(ECR_ENCRYPTION_TYPES)}.",
        )


def _redis_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (REPLICATION_GROUP, CACHE_CLUSTER):
        return
    enabled = get(args.props, "transitEncryptionEnabled")
    mode = get(args.props, "transitEncryptionMode")
    if enabled is not UNKNOWN and not is_true(enabled):
        report(
            f"ElastiCache {args.name!r} accepts plaintext connections: "
            "set transitEncryptionEnabled=true.",
        )
    elif mode not in (None, UNKNOWN, "required"):
        report(
            f"ElastiCache {args.name!r} has transitEncryptionMode={mode!r}, which still accepts "
            "plaintext: set it to 'required'.",
        )


def _rds_ssl(args: StackValidationArgs, report: ReportViolation) -> None:
    links = {
        RDS_INSTANCE: ("parameterGroupName", RDS_PARAMETER_GROUP),
        RDS_CLUSTER: ("dbClusterParameterGroupName", RDS_CLUSTER_PARAMETER_GROUP),
    }
    for db in args.resources:
        if db.resource_type not in links:
            continue
        prop, group_type = links[db.resource_type]
        engine = get(db.props, "engine")
        if db.resource_type == RDS_INSTANCE and str(engine).startswith("aurora"):
            continue  # an Aurora instance takes its TLS setting from its cluster
        if engine is UNKNOWN:
            continue
        if engine not in SSL_PARAMETERS:
            report(f"RDS {db.name!r}: no rule known to force TLS for engine {engine!r}.", db.urn)
            continue
        parameter, on = SSL_PARAMETERS[engine]
        groups = dependencies(db, prop, group_type)
        name = get(db.props, prop)
        if not groups:
            if name is UNKNOWN:
                continue
            where = (
                f"parameter group {name!r} is not managed here" if name else "no parameter group"
            )
            report(
                f"RDS {db.name!r} does not force TLS ({where}): attach a parameter group "
                f"from this stack that sets {parameter}=1.",
                db.urn,
            )
            continue
        for group in groups:
            values = {
                get(p, "name"): str(get(p, "value"))
                for p in items(get(group.props, "parameters", default=[]))
            }
            if values.get(parameter) not in on:
                report(
                    f"RDS {db.name!r} does not force TLS: its parameter group {group.name!r} "
                    f"must set {parameter}=1.",
                    db.urn,
                )


def _listener_group(listener) -> str:
    albs = dependencies(listener, "loadBalancerArn")
    if albs:
        return albs[0].urn
    arn = get(listener.props, "loadBalancerArn")
    return "unknown" if arn is UNKNOWN else str(arn)


def _redirects_to_https(listener) -> bool:
    actions = items(get(listener.props, "defaultActions", default=[]))
    return bool(actions) and all(
        get(a, "type") == "redirect" and get(a, "redirect", "protocol") == "HTTPS" for a in actions
    )


def _https(args: StackValidationArgs, report: ReportViolation) -> None:
    by_alb = defaultdict(list)
    for listener in args.resources:
        if listener.resource_type == LISTENER:
            by_alb[_listener_group(listener)].append(listener)
    for listeners in by_alb.values():
        secure = [
            lsn
            for lsn in listeners
            if get(lsn.props, "protocol") == "HTTPS" or get(lsn.props, "certificateArn")
        ]
        for listener in secure:
            policy = get(listener.props, "sslPolicy")
            if not get(listener.props, "certificateArn"):
                report(f"HTTPS listener {listener.name!r} has no certificateArn.", listener.urn)
            if policy is not UNKNOWN and not str(policy or "").startswith(TLS12_POLICY_PREFIXES):
                report(
                    f"HTTPS listener {listener.name!r} allows TLS older than 1.2 "
                    f"(sslPolicy {policy!r}): use ELBSecurityPolicy-TLS13-1-2-2021-06.",
                    listener.urn,
                )
        if not secure:
            continue  # no certificate on this load balancer: plain HTTP is all it can serve
        for listener in listeners:
            if get(listener.props, "protocol") == "HTTP" and not _redirects_to_https(listener):
                report(
                    f"HTTP listener {listener.name!r} serves plaintext although its load "
                    "balancer has a certificate: make its default action a redirect to HTTPS.",
                    listener.urn,
                )


RDS_STORAGE_ENCRYPTED = ResourceValidationPolicy(
    name="rds-storage-encrypted",
    description="RDS instances and clusters encrypt their storage at rest.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rds_storage,
)
ELASTICACHE_ENCRYPTED_AT_REST = ResourceValidationPolicy(
    name="elasticache-encrypted-at-rest",
    description="ElastiCache replication groups encrypt data at rest.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_cache_at_rest,
)
EKS_SECRETS_ENCRYPTED = ResourceValidationPolicy(
    name="eks-secrets-encrypted",
    description="EKS envelope-encrypts Kubernetes secrets with a KMS key.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_eks_secrets,
)
ECR_ENCRYPTED_AT_REST = ResourceValidationPolicy(
    name="ecr-encrypted-at-rest",
    description="ECR repositories declare their encryption at rest (AES256 or KMS).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_ecr,
)
REDIS_TLS_REQUIRED = ResourceValidationPolicy(
    name="redis-tls-required",
    description="ElastiCache requires TLS for every connection.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_redis_tls,
)
RDS_TLS_REQUIRED = StackValidationPolicy(
    name="rds-tls-required",
    description="RDS refuses unencrypted connections (rds.force_ssl / require_secure_transport).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rds_ssl,
)
HTTPS_WHEN_CERTIFICATE = StackValidationPolicy(
    name="alb-https-when-certificate",
    description="A load balancer with a certificate serves HTTPS (TLS 1.2+) and only redirects "
    "on HTTP.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_https,
)

POLICIES = [
    RDS_STORAGE_ENCRYPTED,
    ELASTICACHE_ENCRYPTED_AT_REST,
    EKS_SECRETS_ENCRYPTED,
    ECR_ENCRYPTED_AT_REST,
    REDIS_TLS_REQUIRED,
    RDS_TLS_REQUIRED,
    HTTPS_WHEN_CERTIFICATE,
]
