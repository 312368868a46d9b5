"""Kubernetes workloads: probes, limits, non-root, an HPA (or a KEDA ScaledObject, which makes
and owns one) and a PDB per Deployment, pinned images.

Objects rendered by a Helm chart or a YAML bundle (third-party add-ons) are the chart's
business and are not checked, except for image tags.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import UNKNOWN, get, is_rendered_by_chart, is_true, items, number

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPAS = (
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
)
# A KEDA ScaledObject (a CustomResource) creates and owns the HPA of its target.
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
# Workload type -> path of its pod template's spec.
POD_SPEC_PATHS = {
    DEPLOYMENT: ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
RESOURCE_KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


def deployments(resources) -> list[PolicyResource]:
    """The program's own Deployments (not those a chart renders)."""
    return [
        r for r in resources if r.resource_type == DEPLOYMENT and not is_rendered_by_chart(r.urn)
    ]


def containers(workload: PolicyResource, init: bool = True) -> Iterator[tuple[str, Mapping]]:
    """(name, container) of a workload's pod template; init containers too unless `init=False`."""
    spec = get(workload.props, *POD_SPEC_PATHS[workload.resource_type], default={})
    kinds = ("containers", "initContainers") if init else ("containers",)
    for kind in kinds:
        for container in items(get(spec, kind, default=[])):
            if isinstance(container, Mapping):
                yield str(get(container, "name", default="?")), container


def _name(resource: PolicyResource) -> str | None:
    name = get(resource.props, "metadata", "name")
    return None if name is UNKNOWN else name


def _namespace(resource: PolicyResource):
    return get(resource.props, "metadata", "namespace", default="default")


def _same_namespace(a: PolicyResource, b: PolicyResource) -> bool:
    ns_a, ns_b = _namespace(a), _namespace(b)
    return UNKNOWN in (ns_a, ns_b) or ns_a == ns_b


def _depends_on(resource: PolicyResource, target: PolicyResource) -> bool:
    return any(
        d.urn == target.urn for deps in resource.property_dependencies.values() for d in deps
    )


def _probes(args: StackValidationArgs, report: ReportViolation) -> None:
    for deployment in deployments(args.resources):
        for name, container in containers(deployment, init=False):
            missing = [p for p in ("readinessProbe", "livenessProbe") if not get(container, p)]
            if missing:
                report(
                    f"Deployment {deployment.name!r} container {name!r} has no "
                    f"{' and no '.join(missing)}.",
                    deployment.urn,
                )


def _limits(args: StackValidationArgs, report: ReportViolation) -> None:
    for deployment in deployments(args.resources):
        for name, container in containers(deployment):
            resources = get(container, "resources", default={})
            if resources is UNKNOWN:
                continue
            missing = [k for k in RESOURCE_KEYS if not get(resources, *k.split("."))]
            if missing:
                report(
                    f"Deployment {deployment.name!r} container {name!r} sets no "
                    f"{', '.join('resources.' + k for k in missing)}.",
                    deployment.urn,
                )


def _root_problems(pod, context) -> list[str]:
    def setting(key):  # a container's setting overrides the pod's
        value = get(context, key)
        return get(pod, key) if value is None else value

    problems = []
    non_root = setting("runAsNonRoot")
    if non_root is not UNKNOWN and not is_true(non_root):
        problems.append("runAsNonRoot is not true")
    if number(setting("runAsUser")) == 0:
        problems.append("runAsUser is 0")
    escalation = get(context, "allowPrivilegeEscalation")
    if escalation is not UNKNOWN and escalation is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if is_true(get(context, "privileged")):
        problems.append("privileged is true")
    return problems


def _non_root(args: StackValidationArgs, report: ReportViolation) -> None:
    for deployment in deployments(args.resources):
        pod = get(deployment.props, "spec", "template", "spec", "securityContext", default={})
        for name, container in containers(deployment):
            problems = _root_problems(pod, get(container, "securityContext", default={}))
            if problems:
                report(
                    f"Deployment {deployment.name!r} container {name!r} may run as root: "
                    f"{'; '.join(problems)}.",
                    deployment.urn,
                )


def _scales(hpa: PolicyResource, deployment: PolicyResource) -> bool:
    ref = get(hpa.props, "spec", "scaleTargetRef", default={})
    # A ScaledObject's target kind defaults to Deployment; an HPA's is required.
    kind = get(ref, "kind", default="Deployment" if hpa.resource_type == SCALED_OBJECT else None)
    if kind not in ("Deployment", UNKNOWN) or not _same_namespace(hpa, deployment):
        return False
    name = _name(deployment)
    return _depends_on(hpa, deployment) or (name is not None and get(ref, "name") == name)


def _has_hpa(args: StackValidationArgs, report: ReportViolation) -> None:
    scalers = [r for r in args.resources if r.resource_type in (*HPAS, SCALED_OBJECT)]
    for deployment in deployments(args.resources):
        if not any(_scales(scaler, deployment) for scaler in scalers):
            report(
                f"Deployment {deployment.name!r} has no HorizontalPodAutoscaler or KEDA "
                "ScaledObject (spec.scaleTargetRef kind Deployment, its name, its namespace).",
                deployment.urn,
            )


def _protects(pdb: PolicyResource, deployment: PolicyResource) -> bool:
    if not _same_namespace(pdb, deployment):
        return False
    selector = get(pdb.props, "spec", "selector", "matchLabels", default={})
    if selector is UNKNOWN:
        return _depends_on(pdb, deployment)
    labels = get(deployment.props, "spec", "template", "metadata", "labels", default={})
    if labels is UNKNOWN:
        return _depends_on(pdb, deployment)
    return bool(selector) and all(get(labels, k) == get(selector, k) for k in selector)


def _has_pdb(args: StackValidationArgs, report: ReportViolation) -> None:
    pdbs = [r for r in args.resources if r.resource_type == PDB]
    for deployment in deployments(args.resources):
        if not any(_protects(pdb, deployment) for pdb in pdbs):
            report(
                f"Deployment {deployment.name!r} has no PodDisruptionBudget selecting its pods "
                "(spec.selector.matchLabels within the pod template's labels).",
                deployment.urn,
            )


def image_problem(image) -> str | None:
    """Why an image reference is not pinned (None when it is, or is not known yet)."""
    if image is UNKNOWN:
        return None
    if not isinstance(image, str) or not image:
        return "has no image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"uses {image!r} without a tag (that is :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"uses {image!r}"
    return None


def _no_latest(args: StackValidationArgs, report: ReportViolation) -> None:
    for workload in args.resources:
        if workload.resource_type not in POD_SPEC_PATHS:
            continue
        for name, container in containers(workload):
            problem = image_problem(get(container, "image"))
            if problem:
                report(
                    f"{workload.resource_type.rsplit(':', 1)[-1]} {workload.name!r} container "
                    f"{name!r} {problem}: pin a version tag or a digest.",
                    workload.urn,
                )


DEPLOYMENT_PROBES = StackValidationPolicy(
    name="deployment-probes",
    description="Every container of a Deployment has a readiness and a liveness probe.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_probes,
)
DEPLOYMENT_RESOURCES = StackValidationPolicy(
    name="deployment-resource-limits",
    description="Every container of a Deployment requests and limits CPU and memory.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_limits,
)
DEPLOYMENT_NON_ROOT = StackValidationPolicy(
    name="deployment-non-root",
    description="Every container of a Deployment runs as non-root without privilege escalation.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_non_root,
)
DEPLOYMENT_HPA = StackValidationPolicy(
    name="deployment-has-hpa",
    description="Every Deployment is scaled by a HorizontalPodAutoscaler or a KEDA ScaledObject.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_has_hpa,
)
DEPLOYMENT_PDB = StackValidationPolicy(
    name="deployment-has-pdb",
    description="Every Deployment's pods are covered by a PodDisruptionBudget.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_has_pdb,
)
NO_LATEST_IMAGE = StackValidationPolicy(
    name="no-latest-image-tag",
    description="No workload runs an image by the tag 'latest' or without a tag.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_latest,
)

POLICIES = [
    DEPLOYMENT_PROBES,
    DEPLOYMENT_RESOURCES,
    DEPLOYMENT_NON_ROOT,
    DEPLOYMENT_HPA,
    DEPLOYMENT_PDB,
    NO_LATEST_IMAGE,
]
