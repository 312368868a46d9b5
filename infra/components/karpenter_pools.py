"""What Karpenter may launch: the EC2NodeClass and the NodePools (karpenter.sh/v1), as specs.

- EC2NodeClass `default`: AL2023 at a pinned AMI alias (al2023@v<date>, the node release pinned
  for the cluster's Kubernetes version, so Karpenter's nodes and the system group run the same
  AMI build); IMDSv2 only with a hop limit of 1 (pods cannot borrow the node role); an
  encrypted gp3 root volume; subnets and security groups chosen by ID (the stack's own VPC and
  an existing one alike): the EKS cluster security group and the workload group.
- NodePool `api`: on-demand only, untainted; nodes labelled `agent-platform/pool: general`,
  which the API pods and the migration Job select.
- NodePool `workers`: spot or on-demand (Karpenter prefers the cheaper spot offers), the same
  label and a `agent-platform/workers` NoSchedule taint that only the worker pods tolerate, so
  nothing else lands on capacity EC2 may reclaim. Higher weight: pending workers get spot first.
- Both: x86_64 Linux instance types from a pinned list (what the price table and the simulator
  know), cpu and memory limits from config, consolidation when empty or underutilised after
  CONSOLIDATE_AFTER, at most one node disrupted at a time (the PDBs then let one pod go at a
  time), nodes replaced after EXPIRE_AFTER and a drain bounded by TERMINATION_GRACE_PERIOD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.components.workload.pods import NODE_POOL, NODE_POOL_LABEL, WORKER_TAINT

NODE_CLASS = "default"
ROOT_DEVICE = "/dev/xvda"  # AL2023
ROOT_VOLUME = "50Gi"  # as the managed group's launch template
IMDS_HOP_LIMIT = 1
CONSOLIDATE_AFTER = "5m"
EXPIRE_AFTER = "720h"  # 30 days: no node older than a month of patches
TERMINATION_GRACE_PERIOD = "1h"  # a drain stuck on a PDB is forced after this
DISRUPTION_BUDGET = "1"  # nodes at a time, for every reason (consolidation, drift, expiry)
# Current-generation general purpose and compute optimised, 2-8 vCPUs: one price table entry
# each (infra/data/prices.json). Sizes beyond 2xlarge would pack more than a PDB-sized
# slice of the service onto one node.
API_INSTANCE_TYPES = (
    "c6i.large", "c6i.xlarge", "c6i.2xlarge", "c7i.large", "c7i.xlarge", "c7i.2xlarge",
    "m6i.large", "m6i.xlarge", "m6i.2xlarge", "m7i.large", "m7i.xlarge", "m7i.2xlarge",
)  # fmt: skip
WORKER_INSTANCE_TYPES = (*API_INSTANCE_TYPES, "m5.large", "m5.xlarge", "m5.2xlarge")
POOL_WEIGHTS = {"api": 10, "workers": 20}


@dataclass(frozen=True)
class PoolLimits:
    """What each NodePool may run at most (Karpenter's `spec.limits`)."""

    cpu: int  # vCPUs
    memory_gib: int

    def spec(self) -> dict[str, str]:
        return {"cpu": str(self.cpu), "memory": f"{self.memory_gib}Gi"}


def node_class_spec(
    *,
    role: pulumi.Input[str],
    ami_alias: str,
    subnet_ids: Sequence[pulumi.Input[str]],
    security_group_ids: Sequence[pulumi.Input[str]],
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """The EC2NodeClass spec."""
    return {
        "role": role,
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": [{"id": s} for s in subnet_ids],
        "securityGroupSelectorTerms": [{"id": g} for g in security_group_ids],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": IMDS_HOP_LIMIT,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": ROOT_DEVICE,
                "rootVolume": True,
                "ebs": {
                    "volumeSize": ROOT_VOLUME,
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": dict(tags),
    }


def _requirements(capacity_types: Sequence[str], types: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(types)},
    ]


def _pool(
    capacity_types: Sequence[str],
    types: Sequence[str],
    limits: PoolLimits,
    weight: int,
    taints: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
        "requirements": _requirements(capacity_types, types),
        "expireAfter": EXPIRE_AFTER,
        "terminationGracePeriod": TERMINATION_GRACE_PERIOD,
    }
    if taints:
        template_spec["taints"] = [dict(t) for t in taints]
    return {
        "template": {"metadata": {"labels": {NODE_POOL_LABEL: NODE_POOL}}, "spec": template_spec},
        "limits": limits.spec(),
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": CONSOLIDATE_AFTER,
            "budgets": [{"nodes": DISRUPTION_BUDGET}],
        },
        "weight": weight,
    }


def node_pools(limits: PoolLimits) -> dict[str, dict[str, Any]]:
    """NodePool name -> spec."""
    return {
        "api": _pool(["on-demand"], API_INSTANCE_TYPES, limits, POOL_WEIGHTS["api"]),
        "workers": _pool(
            ["spot", "on-demand"],
            WORKER_INSTANCE_TYPES,
            limits,
            POOL_WEIGHTS["workers"],
            taints=[WORKER_TAINT],
        ),
    }
