"""Configuration keys of the EKS cluster, its nodes, and the image it runs.

Each field is one key (see `infra.config.spec.key`); validators are the rules across keys.
"""

from __future__ import annotations

from datetime import date

from pydantic import ValidationInfo, model_validator

from infra.config import checks, kubernetes
from infra.config.rules import broken, explicitly_set, ordered
from infra.config.sections.common import RETENTION
from infra.config.spec import (
    Bool,
    Int,
    Names,
    NonEmptyNames,
    Section,
    Text,
    between,
    key,
    one_of,
    optional,
    rule,
)

NODE_GROUP_MAX_SIZE = 450  # EKS managed node group quota
KARPENTER = "karpenter"
CLUSTER_AUTOSCALER = "cluster-autoscaler"
NODE_AUTOSCALERS = (KARPENTER, CLUSTER_AUTOSCALER)
NODE_POOL_MAX_CPU = 10000  # vCPUs per NodePool: a backstop, far above any EC2 quota here
NODE_POOL_MAX_MEMORY_GIB = 80000
MAX_PUBLIC_ACCESS_CIDRS = 40  # EKS quota L-93A74D60, not adjustable


class ClusterConfig(Section, title="Cluster (EKS)"):
    kubernetes_version: Text = key(
        "kubernetesVersion",
        default=checks.DEFAULT_KUBERNETES_VERSION,
        check=rule(lambda v: v in checks.KUBERNETES_VERSIONS, "", "1.29", "1.34"),
        allowed=" | ".join(checks.KUBERNETES_VERSIONS)
        + f" (pinned in infra/config/kubernetes.py), more than {kubernetes.SUPPORT_MARGIN_DAYS} "
        "days before its EKS support ends",
        help="Kubernetes version of the control plane, the nodes and the EKS add-ons (node AMI "
        "release and add-on versions are pinned per Kubernetes version).",
    )
    upgrade_policy: Text = key(
        "upgradePolicy",
        default="STANDARD",
        check=one_of(*kubernetes.SUPPORT_POLICIES),
        help="EKS support policy. STANDARD: no extended-support charges; EKS upgrades the control "
        "plane itself when standard support ends. EXTENDED: paid extended support for 12 more "
        f"months. Preview fails {kubernetes.SUPPORT_MARGIN_DAYS} days before the end.",
    )
    endpoint_public_access: Bool = key(
        "clusterEndpointPublicAccess",
        default=True,
        help="Whether the Kubernetes API has a public endpoint (beside the private one). false: "
        "private only; `pulumi up` must then run inside the VPC (a self-hosted runner).",
    )
    public_access_cidrs: Names = key(
        "clusterPublicAccessCidrs",
        dev=["0.0.0.0/0"],
        staging=[],
        prod=[],
        check=rule(
            checks.ipv4_cidr,
            "IPv4 CIDRs in canonical form such as 203.0.113.0/24, at most "
            f"{MAX_PUBLIC_ACCESS_CIDRS}; required in staging and prod with a public endpoint",
            "1.2.3.4/40",
            "0.0.0.0/33",
        ),
        help="Who may reach the public Kubernetes API endpoint: the egress addresses of whatever "
        "runs `pulumi up` (CI runners, VPN).",
    )
    admin_role_arns: Names = key(
        "adminRoleArns",
        default=[],
        check=rule(
            checks.iam_role_arn,
            "IAM role ARNs such as arn:aws:iam::123456789012:role/Admin",
            "arn:aws:iam::123:role/x",
        ),
        help="Roles granted cluster-admin through EKS access entries.",
    )
    log_retention_days: Int = key(
        "clusterLogRetentionDays",
        default=90,
        check=RETENTION,
        help="Days control-plane logs (api, audit, authenticator) are kept.",
    )
    node_autoscaler: Text = key(
        "nodeAutoscaler",
        default=KARPENTER,
        check=one_of(*NODE_AUTOSCALERS),
        help="What adds and removes nodes. karpenter: Karpenter NodePools (api on-demand, "
        "workers spot or on-demand) launch right-sized nodes; the managed node group becomes the "
        "system group (labelled agent-platform/pool=system, held at nodeDesiredSize). "
        "cluster-autoscaler: the managed node group runs everything and Cluster Autoscaler "
        "scales it. Switching updates the node group in place (labels, tags, size), never "
        "replaces it (README: Nodes: Karpenter).",
    )
    node_pool_cpu_limit: Int = key(
        "nodePoolCpuLimit",
        dev=16,
        staging=32,
        prod=128,
        check=between(1, NODE_POOL_MAX_CPU),
        help="With karpenter: most vCPUs of the nodes each NodePool (api, workers) may run; "
        "Karpenter launches nothing beyond it (a cost ceiling).",
    )
    node_pool_memory_limit_gib: Int = key(
        "nodePoolMemoryLimitGib",
        dev=64,
        staging=128,
        prod=512,
        check=between(1, NODE_POOL_MAX_MEMORY_GIB),
        help="With karpenter: most memory (GiB) of the nodes each NodePool may run.",
    )
    spot_service_linked_role: Bool = key(
        "createSpotServiceLinkedRole",
        default=False,
        help="With karpenter: create the account's EC2 Spot service-linked role "
        "(AWSServiceRoleForEC2Spot), which launching Spot nodes needs. Creating it fails when the "
        "account already has it (one per account): true only in an account that never ran Spot.",
    )
    node_instance_types: NonEmptyNames = key(
        "nodeInstanceTypes",
        dev=["t3.medium"],
        staging=["t3.large"],
        prod=["t3.large"],
        check=rule(
            lambda v: checks.ec2_instance_type(v) and not checks.arm_instance_type(v),
            "x86_64 EC2 instance types such as t3.large (the image is linux/amd64), at least one",
            "t3.larg",
            "m7g.large",
        ),
        help="Instance types of the managed node group (the system group with karpenter).",
    )
    node_capacity_type: Text = key(
        "nodeCapacityType",
        default="ON_DEMAND",
        check=one_of("ON_DEMAND", "SPOT"),
        help="Capacity type of the node group.",
    )
    node_min_size: Int = key(
        "nodeMinSize", default=1, check=between(0, NODE_GROUP_MAX_SIZE), help="Fewest nodes."
    )
    node_desired_size: Int = key(
        "nodeDesiredSize",
        dev=2,
        staging=2,
        prod=3,
        check=between(0, NODE_GROUP_MAX_SIZE),
        allowed="nodeMinSize..nodeMaxSize",
        help="Nodes at creation; with cluster-autoscaler it owns the count afterwards, with "
        "karpenter the system group keeps this many.",
    )
    node_max_size: Int = key(
        "nodeMaxSize",
        dev=3,
        staging=5,
        prod=10,
        check=between(1, NODE_GROUP_MAX_SIZE),
        help="Most nodes.",
    )

    @model_validator(mode="after")
    def _relations(self, info: ValidationInfo) -> ClusterConfig:
        ordered(self, info, "node_min_size", "node_desired_size", "node_max_size")
        self._check_endpoint(info)
        today: date | None = (info.context or {}).get("today")
        if today is not None and self.kubernetes_version in kubernetes.RELEASES:
            problem = kubernetes.support_problem(
                self.kubernetes_version, self.upgrade_policy, today
            )
            if problem:
                raise broken("kubernetesVersion", problem)
        return self

    def _check_endpoint(self, info: ValidationInfo) -> None:
        cidrs = self.public_access_cidrs
        if not self.endpoint_public_access:
            if cidrs and explicitly_set(self, info, "public_access_cidrs"):
                raise broken(
                    "clusterPublicAccessCidrs",
                    "set while clusterEndpointPublicAccess is false; allowed: [] (a private "
                    "endpoint has no public allow-list)",
                )
            return
        if not cidrs:
            raise broken(
                "clusterPublicAccessCidrs",
                "empty while clusterEndpointPublicAccess is true; allowed: the egress CIDRs of "
                'what runs `pulumi up`, such as ["203.0.113.0/24"], or '
                "clusterEndpointPublicAccess false for a private endpoint only",
            )
        if len(cidrs) > MAX_PUBLIC_ACCESS_CIDRS:
            raise broken(
                "clusterPublicAccessCidrs",
                f"{len(cidrs)} CIDRs; allowed: at most {MAX_PUBLIC_ACCESS_CIDRS} (EKS quota)",
            )

    @property
    def public_endpoint_cidrs(self) -> tuple[str, ...]:
        """The public endpoint's allow-list (empty for a private-only endpoint)."""
        return self.public_access_cidrs if self.endpoint_public_access else ()

    @property
    def karpenter(self) -> bool:
        """Whether Karpenter scales the nodes (else Cluster Autoscaler scales the node group)."""
        return self.node_autoscaler == KARPENTER

    @property
    def release(self) -> kubernetes.KubernetesRelease:
        """What the configured Kubernetes version runs with (node release, add-on versions)."""
        return kubernetes.RELEASES[self.kubernetes_version]


class RegistryConfig(Section, title="Registry and image"):
    keep_images: Int = key(
        "ecrKeepImages",
        default=30,
        check=between(1, 1000),
        help="Images the ECR lifecycle policy keeps (the most recent ones).",
    )
    image: Text = key(
        "image",
        default="",
        check=optional(
            rule(
                lambda v: checks.image_reference(v) and checks.pinned_image(v),
                "an image reference pinned to a tag other than latest or to a digest, such as "
                "ghcr.io/org/agent:1.0",
                "Registry/UPPER:tag",
                "ghcr.io/org/agent:latest",
                "ghcr.io/org/agent",
            )
        ),
        help="Prebuilt image of the service (with buildImage false). Empty: built from service/.",
    )
    build_image: Bool = key(
        "buildImage",
        default=True,
        help="Build service/ and push it to ECR by digest (needs a Docker/BuildKit "
        "builder where `pulumi up` runs).",
    )

    @model_validator(mode="after")
    def _relations(self) -> RegistryConfig:
        if not self.build_image and not self.image:
            raise broken(
                "image",
                "empty while buildImage is false; "
                "allowed: an image reference such as ghcr.io/org/agent:1.0",
            )
        if self.build_image and self.image:
            # Two sources for one image: say which one wins rather than guess.
            raise broken(
                "buildImage",
                f"true while image is set ({self.image!r}); "
                "allowed: false to deploy that image, or leave image empty to build service/",
            )
        return self
