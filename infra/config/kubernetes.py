"""What the platform pins for each Kubernetes minor it supports, and EKS's support calendar.

One row per minor: the EKS support dates, the Amazon Linux 2023 release of the managed nodes and
the versions of the four EKS add-ons. Nothing is looked up live: a lookup ("the latest AMI", "the
most recent add-on") would roll nodes or add-ons on whatever `pulumi up` happens to run after AWS
publishes a build. Changing `kubernetesVersion` moves all of them together (README "Upgrading
Kubernetes"); bumping a pin is a one-line change reviewed in the preview.

Sources (checked 2026-12-02; re-check before adding a row or bumping a pin):

- Support dates: the EKS release calendar,
  https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar
  (live: `aws eks describe-cluster-versions`).
- Node releases (`<kubernetes patch>-<YYYYMMDD>`, the "Release version" of the AL2023 AMIs):
  awslabs/amazon-eks-ami release notes, v20260903 (1.36) and CHANGELOG v20260714 (1.35). Avoid
  v20260930 and v20261003 (kernel 6.12.110 can panic, fixed in v20261012). Current value:
  `aws ssm get-parameter --name <path>/release_version`, where <path> is
  /aws/service/eks/optimized-ami/<minor>/amazon-linux-2023/x86_64/standard/recommended.
- Add-ons: `aws eks describe-addon-versions --kubernetes-version <minor> --addon-name <name>`
  (builds seen in use with each minor in Sep-Oct 2026).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SUPPORT_POLICIES = ("STANDARD", "EXTENDED")
# Preview fails this many days before the support the policy pays for ends: time to upgrade one
# minor (control plane, add-ons, nodes) in a change window, with a month to spare.
SUPPORT_MARGIN_DAYS = 60


@dataclass(frozen=True)
class KubernetesRelease:
    """What one Kubernetes minor runs with on this platform."""

    version: str
    end_of_standard_support: date
    end_of_extended_support: date
    node_release: str  # AL2023 AMI release of the managed node group
    vpc_cni: str
    kube_proxy: str
    coredns: str
    metrics_server: str

    @property
    def ami_alias(self) -> str:
        """Karpenter's EC2NodeClass alias for the same AL2023 build: al2023@v<YYYYMMDD>."""
        return "al2023@v" + self.node_release.rsplit("-", 1)[1]

    def addon_versions(self) -> dict[str, str]:
        """EKS add-on name -> pinned version."""
        return {
            "vpc-cni": self.vpc_cni,
            "kube-proxy": self.kube_proxy,
            "coredns": self.coredns,
            "metrics-server": self.metrics_server,
        }

    def end_of_support(self, policy: str) -> date:
        """The day EKS upgrades the control plane by itself under `policy`."""
        if policy == "EXTENDED":
            return self.end_of_extended_support
        return self.end_of_standard_support


RELEASES: dict[str, KubernetesRelease] = {
    "1.35": KubernetesRelease(
        version="1.35",
        end_of_standard_support=date(2027, 3, 27),
        end_of_extended_support=date(2028, 3, 27),
        node_release="1.35.6-20260714",
        vpc_cni="v1.23.2-eksbuild.1",
        kube_proxy="v1.35.3-eksbuild.29",
        coredns="v1.14.6-eksbuild.4",
        metrics_server="v0.9.0-eksbuild.11",
    ),
    "1.36": KubernetesRelease(
        version="1.36",
        end_of_standard_support=date(2027, 8, 2),
        end_of_extended_support=date(2028, 8, 2),
        node_release="1.36.3-20260903",
        vpc_cni="v1.23.2-eksbuild.1",
        kube_proxy="v1.36.0-eksbuild.45",
        coredns="v1.14.7-eksbuild.11",
        metrics_server="v0.9.0-eksbuild.11",
    ),
}
KUBERNETES_VERSIONS = tuple(RELEASES)
DEFAULT_KUBERNETES_VERSION = "1.36"


def support_problem(version: str, policy: str, today: date) -> str | None:
    """Why `version` may not be deployed on `today` under `policy`, or None.

    STANDARD: EKS upgrades the control plane itself when standard support ends, after which this
    stack's config would ask for a downgrade; EXTENDED: the same at the end of extended support
    (paid from the end of standard support). Either way the preview stops SUPPORT_MARGIN_DAYS
    before that day, naming it, so the upgrade happens on the team's schedule.
    """
    release = RELEASES[version]
    ends = release.end_of_support(policy)
    days_left = (ends - today).days
    if days_left > SUPPORT_MARGIN_DAYS:
        return None
    support = "standard" if policy == "STANDARD" else "extended"
    when = (
        f"leaves EKS {support} support on {ends.isoformat()} (in {days_left} days)"
        if days_left > 0
        else f"left EKS {support} support on {ends.isoformat()}"
    )
    newer = [
        f"{r.version} ({support} support to {r.end_of_support(policy).isoformat()})"
        for r in RELEASES.values()
        if (r.end_of_support(policy) - today).days > SUPPORT_MARGIN_DAYS
    ]
    target = ", ".join(newer) if newer else "none pinned yet: add the next minor to RELEASES"
    return (
        f"{version!r} {when}, when EKS upgrades the control plane by itself "
        f"(upgradePolicy {policy}); allowed: a version with more than {SUPPORT_MARGIN_DAYS} days "
        f"of support left: {target}; upgrade one minor at a time (README: Upgrading Kubernetes)"
    )


def extended_support_notice(version: str, policy: str, today: date) -> str | None:
    """A warning while `version` runs (and is billed) on extended support, or None."""
    release = RELEASES[version]
    if policy != "EXTENDED" or today < release.end_of_standard_support:
        return None
    return (
        f"kubernetesVersion {version} left EKS standard support on "
        f"{release.end_of_standard_support.isoformat()}: the cluster is billed for extended "
        "support until you upgrade (README: Upgrading Kubernetes)"
    )
