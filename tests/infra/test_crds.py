"""Custom resources validate strictly against the vendored CRDs of the pinned releases."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from infra.components.addons import LOAD_BALANCER_CONTROLLER
from infra.offline import crds
from tests.infra.pulumi_harness import ROOT

SAMPLES = Path(__file__).parent / "crd_samples"
KEDA_EXAMPLES = ROOT / "bench" / "autoscale" / "examples" / "keda"


def sample(name: str) -> dict:
    folder = KEDA_EXAMPLES if (KEDA_EXAMPLES / name).exists() else SAMPLES
    return yaml.safe_load((folder / name).read_text())


def changed(obj: dict, change: Callable[[dict], object]) -> dict:
    copied = copy.deepcopy(obj)
    change(copied)
    return copied


# --- vendored files -------------------------------------------------------------------------


def test_every_vendored_file_matches_the_sha256_its_sources_record():
    folders = sorted(p.parent.name for p in crds.CRD_ROOT.glob("*/SOURCES.json"))
    assert folders == ["aws-load-balancer-controller-3.5.0", "karpenter-1.14.1", "keda-2.20.2"]
    for name in folders:
        sources = json.loads((crds.CRD_ROOT / name / "SOURCES.json").read_text())
        assert sources["repo"].startswith("https://github.com/")
        assert len(sources["commit"]) == 40
        listed = {entry["file"] for entry in sources["files"]}
        on_disk = {p.name for p in (crds.CRD_ROOT / name).glob("*.yaml")}
        assert listed == on_disk, name
        for entry in sources["files"]:
            data = (crds.CRD_ROOT / name / entry["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
            assert entry["path"].endswith(entry["file"].split("/")[-1])


def test_the_vendored_versions_are_the_pinned_ones():
    assert (
        crds.CRD_ROOT / f"aws-load-balancer-controller-{LOAD_BALANCER_CONTROLLER.version}"
    ).is_dir()
    keda = json.loads((crds.CRD_ROOT / "keda-2.20.2" / "SOURCES.json").read_text())
    karpenter = json.loads((crds.CRD_ROOT / "karpenter-1.14.1" / "SOURCES.json").read_text())
    assert (keda["tag"], keda["commit"]) == ("v2.20.2", "cbb9bb8ce0809dc9048f72302f7c09765d66ed56")
    assert (karpenter["tag"], karpenter["commit"]) == (
        "v1.14.1",
        "bde00654cd316fddb3dccfba3f5ac07039865429",
    )


def test_the_catalog_serves_every_kind_the_platform_needs():
    served = set(crds.catalog())
    assert {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "ScaledJob"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
        ("keda.sh/v1alpha1", "ClusterTriggerAuthentication"),
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.sh/v1", "NodeClaim"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
        ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding"),
    } <= served


def test_every_cel_rule_of_the_vendored_crds_runs_here():
    rules = [r for crd in crds.catalog().values() for r in crd.rules.values()]
    by_kind = {k: len(c.rules) for (_, k), c in crds.catalog().items()}
    assert (by_kind["NodePool"], by_kind["EC2NodeClass"], by_kind["NodeClaim"]) == (20, 54, 10)
    assert by_kind["ScaledObject"] == 1
    assert len(rules) == 89
    assert crds.unrunnable_rules() == []


def test_a_changed_vendored_file_is_refused(tmp_path):
    shutil.copytree(crds.CRD_ROOT / "keda-2.20.2", tmp_path / "keda-2.20.2")
    target = tmp_path / "keda-2.20.2" / "crd-scaledobjects.yaml"
    target.write_text(target.read_text().replace("maximum: 3600", "maximum: 36000"))
    with pytest.raises(crds.VendoredFileChanged, match=r"crd-scaledobjects\.yaml: sha256"):
        crds.catalog(tmp_path)


def test_a_kind_without_a_vendored_crd_is_an_error():
    obj = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {}}
    with pytest.raises(crds.CrdNotVendored, match=r"monitoring\.coreos\.com/v1 ServiceMonitor"):
        crds.validate(obj)


# --- valid objects ---------------------------------------------------------------------------

VALID = [
    "scaledobject-worker.yaml",
    "scaledobject-api.yaml",
    "triggerauthentication-redis.yaml",
    "triggerauthentication-aws.yaml",
    "clustertriggerauthentication.yaml",
    "scaledjob.yaml",
    "nodepool.yaml",
    "nodeclaim.yaml",
    "ec2nodeclass.yaml",
]


@pytest.mark.parametrize("name", VALID)
def test_realistic_objects_are_valid(name):
    report = crds.validate(sample(name))
    assert (report.errors, report.unchecked) == ([], [])
    assert report.valid


def test_int_or_string_takes_both():
    nodepool = sample("nodepool.yaml")
    assert crds.validate(changed(nodepool, lambda o: o["spec"]["limits"].update(cpu=64))).valid
    report = crds.validate(changed(nodepool, lambda o: o["spec"]["limits"].update(cpu=[64])))
    assert report.errors == ["spec.limits.cpu: [64] is not valid under any of the given schemas"]


# --- invalid objects: (sample, change, the one error expected) -------------------------------

SO, TA, NP, NC = (
    "scaledobject-worker.yaml",
    "triggerauthentication-redis.yaml",
    "nodepool.yaml",
    "ec2nodeclass.yaml",
)


def _requirements(o: dict) -> list:
    return o["spec"]["template"]["spec"]["requirements"]


INVALID = [
    (SO, lambda o: o["spec"].update(minReplicasCount=1),
     "spec: Additional properties are not allowed ('minReplicasCount' was unexpected)"),
    (SO, lambda o: o["spec"].update(minReplicaCount=20),
     "spec: minReplicaCount must be less than or equal to maxReplicaCount"),
    (SO, lambda o: o["spec"]["triggers"][0]["metadata"].update(lagCount=8),
     "spec.triggers[0].metadata.lagCount: 8 is not of type 'string'"),
    (SO, lambda o: o["spec"]["advanced"]["scalingModifiers"].update(metricType="Utilization"),
     "spec.advanced.scalingModifiers.metricType: 'Utilization' is not one of "
     "['AverageValue', 'Value']"),
    (SO, lambda o: o["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"][
        "scaleDown"].update(stabilizationWindowSeconds=4000),
     "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds:"
     " 4000 is greater than the maximum of 3600"),
    (SO, lambda o: o["metadata"].pop("namespace"),
     "metadata.namespace: ScaledObject is namespaced; set one"),
    (SO, lambda o: o["metadata"].update(labels={"tier": 2}),
     "metadata.labels.tier: 2 is not of type 'string'"),
    (TA, lambda o: o["spec"].update(secretTargetRefs=[]),
     "spec: Additional properties are not allowed ('secretTargetRefs' was unexpected)"),
    (TA, lambda o: o["spec"].update(podIdentity={"provider": "aws-irsa"}),
     "spec.podIdentity.provider: 'aws-irsa' is not one of "
     "['azure-workload', 'gcp', 'aws', 'aws-eks', 'none']"),
    (NP, lambda o: o["spec"]["disruption"].update(consolidateAftr="1m"),
     "spec.disruption: Additional properties are not allowed ('consolidateAftr' was unexpected)"),
    (NP, lambda o: _requirements(o).append(
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": []}),
     "spec.template.spec.requirements: requirements with operator 'In' must have a value "
     "defined"),
    (NP, lambda o: o["spec"]["template"]["metadata"]["labels"].update(
        {"node.karpenter.sh/pool": "api"}),
     'spec.template.metadata.labels: label domain "karpenter.sh" is restricted'),
    (NP, lambda o: _requirements(o)[2].update(minValues=4),
     "spec.template.spec.requirements: requirements with 'minValues' must have at least that "
     "many values specified in the 'values' field"),
    (NP, lambda o: o["spec"]["disruption"]["budgets"][1].pop("duration"),
     "spec.disruption.budgets: 'schedule' must be set with 'duration'"),
    (NP, lambda o: o["spec"]["limits"].update(cpu="lots"),
     "spec.limits.cpu: 'lots' does not match"),
    (NC, lambda o: o["spec"].update(amiSelectorTerms=[{"alias": "ubuntu@v1"}]),
     "spec.amiSelectorTerms[0].alias: family is not supported, must be one of the following: "
     "'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'"),
    (NC, lambda o: o["spec"].update(instanceProfile="agent-platform-node"),
     "spec: must specify exactly one of ['role', 'instanceProfile']"),
    (NC, lambda o: o["spec"].update(amiFamily="Bottlerocket"),
     "spec: if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias"),
    (NC, lambda o: o["spec"]["tags"].update({"kubernetes.io/cluster/agent-platform-prod": "x"}),
     "spec.tags: tag contains a restricted tag matching kubernetes.io/cluster/"),
    (NC, lambda o: o["spec"]["metadataOptions"].update(httpTokens="optionalish"),
     "spec.metadataOptions.httpTokens: 'optionalish' is not one of ['required', 'optional']"),
    (NC, lambda o: o["spec"]["metadataOptions"].update(httpPutResponseHopLimit=100),
     "spec.metadataOptions.httpPutResponseHopLimit: 100 is greater than the maximum of 64"),
    (NC, lambda o: o["spec"]["blockDeviceMappings"].append(
        {"deviceName": "/dev/xvdb", "rootVolume": True, "ebs": {"volumeSize": "20Gi"}}),
     "spec.blockDeviceMappings: must have only one blockDeviceMappings with rootVolume"),
    (NC, lambda o: o["metadata"].update(namespace="agent"),
     "metadata.namespace: EC2NodeClass is cluster-scoped; remove it"),
    ("nodeclaim.yaml", lambda o: o["spec"]["nodeClassRef"].update(kind=""),
     "spec.nodeClassRef.kind: kind may not be empty"),
    ("scaledjob.yaml", lambda o: o["spec"]["scalingStrategy"].update(strategy="fastest"),
     "spec.scalingStrategy.strategy: 'fastest' is not one of"),
    ("clustertriggerauthentication.yaml", lambda o: o["spec"].update(podIdentity={}),
     "spec.podIdentity: 'provider' is a required property"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "change", "expected"), INVALID)
def test_mistakes_are_rejected_with_the_crds_message(name, change, expected):
    report = crds.validate(changed(sample(name), change))
    assert len(report.errors) == 1, report.errors
    assert report.errors[0].startswith(expected)
    assert not report.valid


def test_a_transition_rule_runs_on_an_update_only():
    old = sample(NP)
    new = changed(old, lambda o: o["spec"]["template"]["spec"]["nodeClassRef"].update(
        group="karpenter.example.com"))  # fmt: skip
    assert crds.validate(new).valid  # a create: the API server does not run transition rules
    assert crds.validate(new, old).errors == [
        "spec.template.spec.nodeClassRef: nodeClassRef.group is immutable"
    ]


def test_a_tgb_typo_is_rejected():
    tgb = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "agent-api", "namespace": "agent"},
        "spec": {
            "serviceRef": {"name": "agent-api", "port": 80},
            "targetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/a/b",
            "targetType": "ip",
        },
    }
    assert crds.validate(tgb).valid
    typo = changed(tgb, lambda o: o["spec"].update(targetGroupArn=o["spec"].pop("targetGroupARN")))
    assert crds.validate(typo).errors == [
        "spec: Additional properties are not allowed ('targetGroupArn' was unexpected)"
    ]
    bad_type = changed(tgb, lambda o: o["spec"].update(targetType="pod"))
    assert crds.validate(bad_type).errors == [
        "spec.targetType: 'pod' is not one of ['instance', 'ip']"
    ]


# --- the schema conversion and the unrunnable-rule report, on a small CRD ------------------

WIDGET = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
            "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                "type": "object",
                "properties": {
                    "size": {"x-kubernetes-int-or-string": True},
                    "note": {"type": "string", "nullable": True},
                    "replicas": {"type": "integer", "format": "int32", "minimum": 0,
                                 "exclusiveMinimum": True, "default": 1},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "empty": {"type": "object"},
                    "items": {"type": "array", "items": {"type": "string"},
                              "x-kubernetes-validations": [
                                  {"rule": "self.isSorted()", "message": "items sorted"}]},
                },
                "x-kubernetes-validations": [
                    {"rule": "self.replicas <= 3", "message": "at most 3 replicas"}],
            }}},
        }}],
    },
}  # fmt: skip


@pytest.fixture
def widget(tmp_path) -> crds.Crd:
    folder = tmp_path / "example-1.0.0"
    folder.mkdir()
    text = yaml.safe_dump(WIDGET)
    (folder / "widgets.yaml").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    entry = {"file": "widgets.yaml", "path": "widgets.yaml", "sha256": digest}
    sources = {"repo": "https://github.com/example/widgets", "commit": "0" * 40, "files": [entry]}
    (folder / "SOURCES.json").write_text(json.dumps(sources))
    return crds.catalog(tmp_path)[("example.com/v1", "Widget")]


def widget_with(spec: dict) -> dict:
    meta = {"name": "w", "namespace": "agent"}
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta, "spec": spec}


def test_structural_features_map_to_json_schema(widget):
    ok = {"size": "10Gi", "note": None, "replicas": 2, "extra": {"anything": {"goes": 1}}}
    assert widget.validate(widget_with(ok)).valid
    assert widget.validate(widget_with({"size": 10})).valid
    assert widget.validate(widget_with({"size": 1.5})).errors == [
        "spec.size: 1.5 is not valid under any of the given schemas"
    ]
    assert widget.validate(widget_with({"replicas": 0})).errors == [
        "spec.replicas: 0 is less than or equal to the minimum of 0"
    ]
    assert (
        widget.validate(widget_with({"replicas": 2**31}))
        .errors[0]
        .startswith("spec.replicas: 2147483648 is greater than the maximum of 2147483647")
    )
    assert widget.validate(widget_with({"empty": {"x": 1}})).errors == [
        "spec.empty: Additional properties are not allowed ('x' was unexpected)"
    ]
    assert widget.validate(widget_with({"note": 3})).errors == [
        "spec.note: 3 is not of type 'string', 'null'"
    ]


def test_defaults_apply_before_the_rules(widget):
    # replicas defaults to 1, so the rule sees it; 4 breaks it
    assert widget.validate(widget_with({})).valid
    assert widget.validate(widget_with({"replicas": 4})).errors == ["spec: at most 3 replicas"]


def test_a_rule_the_evaluator_cannot_run_is_reported_not_skipped(widget):
    assert widget.rules[(".spec.items", "self.isSorted()")].unrunnable.startswith(
        "INVALID_ARGUMENT: ERROR: <input>:1:14: undeclared reference to 'isSorted'"
    )
    report = widget.validate(widget_with({"items": ["b", "a"]}))
    assert report.errors == []
    assert report.unchecked == [
        "spec.items: 'self.isSorted()' (INVALID_ARGUMENT: ERROR: <input>:1:14: undeclared "
        "reference to 'isSorted' (in container ''))"
    ]
    assert not report.valid
    assert widget.validate(widget_with({})).valid  # the rule's field is unset: nothing to run
