"""Nodes, pods and the node autoscaler.

Node capacity: the instance type's vCPUs and memory (infra/data/prices.json) less what EKS
reserves on an AL2023 node (nodeadm: kube-reserved CPU 6% of the first core, 1% of the second,
0.5% of the next two, 0.25% above; memory 11 MiB x max pods + 255 MiB; eviction threshold
100 MiB), less the hypervisor's share of memory Karpenter assumes (7.5%), less the daemonsets
(aws-node 25m, kube-proxy 100m). System pods (CoreDNS x2, metrics-server, the controllers)
take `SYSTEM_REQUESTS` from the first node.

Pods are placed first-fit on ready nodes in creation order (the spread constraints are
ScheduleAnyway); a pod that fits nowhere stays Pending. A scheduled pod is Ready after
`pod_start_s`. Scaling down removes Pending pods first, then starting, then ready, newest first.

The node autoscaler is Cluster Autoscaler with the chart's defaults: every 10 s it adds the
nodes that Pending pods need (counting nodes still booting), up to the node group's maximum, each
Ready after `node_start_s`; a node whose requests are under half of its capacity and whose pods
fit elsewhere for 10 minutes is drained and removed (not within 10 minutes of a scale-up, one
non-empty node at a time; its pods start again elsewhere), never below the group's minimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from infra.prices import InstanceType

DAEMONSET_CPU_M = 125  # aws-node 25m + kube-proxy 100m on every node
SYSTEM_REQUESTS = (300, 340.0)  # CoreDNS 2 x (100m, 70Mi) + metrics-server (100m, 200Mi)
VM_MEMORY_OVERHEAD = 0.075  # Karpenter's default vmMemoryOverheadPercent
SCAN_INTERVAL_S = 10
UNNEEDED_S = 600  # --scale-down-unneeded-time
DELAY_AFTER_ADD_S = 600  # --scale-down-delay-after-add
UTILIZATION_THRESHOLD = 0.5  # --scale-down-utilization-threshold


def allocatable(instance: InstanceType) -> tuple[int, float]:
    """(millicores, MiB) a node offers pods, after reservations and daemonsets."""
    total_m = instance.vcpu * 1000
    reserved_m = 0
    for start, end, per_10k in ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50),
                                (4000, total_m, 25)):  # fmt: skip
        if total_m > start:
            reserved_m += (min(total_m, end) - start) * per_10k // 10000
    memory = instance.memory_mib * (1 - VM_MEMORY_OVERHEAD) - (11 * instance.max_pods + 255) - 100
    return total_m - reserved_m - DAEMONSET_CPU_M, memory


_ids = count()


@dataclass(eq=False)
class Node:
    created_at: float
    ready_at: float
    cpu_m: int
    memory_mib: float
    pods: list[Pod] = field(default_factory=list)
    unneeded_since: float | None = None
    id: int = field(default_factory=lambda: next(_ids))
    pool: str = "general"  # the managed node group, or a Karpenter NodePool (or "system")
    instance: str = ""
    price_per_hour: float = 0.0

    def free(self) -> tuple[int, float]:
        return (
            self.cpu_m - sum(p.cpu_m for p in self.pods),
            self.memory_mib - sum(p.memory_mib for p in self.pods),
        )

    def fits(self, pod: Pod) -> bool:
        cpu, memory = self.free()
        return pod.cpu_m <= cpu and pod.memory_mib <= memory

    def utilization(self) -> float:
        cpu, memory = self.free()
        return max(1 - cpu / self.cpu_m, 1 - memory / self.memory_mib)


@dataclass(eq=False)
class Pod:
    tier: str
    cpu_m: int
    memory_mib: float
    created_at: float
    node: Node | None = None
    ready_at: float | None = None
    id: int = field(default_factory=lambda: next(_ids))

    def ready(self, now: float) -> bool:
        return self.ready_at is not None and self.ready_at <= now


@dataclass(frozen=True)
class NodeGroup:
    """The managed node group Cluster Autoscaler resizes."""

    instance: InstanceType
    min_size: int
    max_size: int
    desired_size: int
    price_per_hour: float


@dataclass
class Cluster:
    """Every node and pod, with the scheduler and Cluster Autoscaler."""

    group: NodeGroup
    pod_start_s: float
    node_start_s: float
    nodes: list[Node] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    last_scale_up: float = -1e9

    def add_nodes(self, now: float, n: int, ready_at: float | None = None) -> None:
        cpu_m, memory = allocatable(self.group.instance)
        for _ in range(n):
            ready = now + self.node_start_s if ready_at is None else ready_at
            self.nodes.append(
                Node(now, ready, cpu_m, memory, pool=self.group_pool,
                     instance=self.group.instance.name, price_per_hour=self.group.price_per_hour)
            )  # fmt: skip

    group_pool = "general"  # what the managed node group's nodes are (Karpenter: "system")

    def admits(self, node: Node, pod: Pod) -> bool:
        """Whether `pod` may run on `node` (one node group: every pod on every node)."""
        return True

    def cost_per_hour(self) -> float:
        """What the nodes that exist cost, per hour (on demand)."""
        return sum(n.price_per_hour for n in self.nodes)

    def pods_of(self, tier: str) -> list[Pod]:
        return [p for p in self.pods if p.tier == tier]

    def scale(
        self, tier: str, replicas: int, cpu_m: int, memory_mib: float, now: float
    ) -> list[Pod]:
        """Create or delete pods of `tier` to reach `replicas`; returns the pods deleted."""
        pods = self.pods_of(tier)
        for _ in range(replicas - len(pods)):
            self.pods.append(Pod(tier, cpu_m, memory_mib, now))
        if replicas >= len(pods):
            return []

        def rank(p: Pod) -> tuple[int, float]:
            state = 0 if p.node is None else 1 if not p.ready(now) else 2
            return (state, -p.created_at)

        doomed = sorted(pods, key=rank)[: len(pods) - replicas]
        for pod in doomed:
            self._delete(pod)
        return doomed

    def _delete(self, pod: Pod) -> None:
        self.pods.remove(pod)
        if pod.node is not None:
            pod.node.pods.remove(pod)

    def schedule(self, now: float) -> None:
        ready_nodes = [n for n in self.nodes if n.ready_at <= now]
        for pod in self.pods:
            if pod.node is None:
                node = next((n for n in ready_nodes if n.fits(pod) and self.admits(n, pod)), None)
                if node is not None:
                    pod.node, pod.ready_at = node, now + self.pod_start_s
                    node.pods.append(pod)

    def pending(self) -> list[Pod]:
        return [p for p in self.pods if p.node is None]

    def step(self, now: float, dt: float) -> None:
        """Schedule, and run Cluster Autoscaler on its interval."""
        self.schedule(now)
        if now % SCAN_INTERVAL_S < dt:
            self._autoscale(now)

    def _autoscale(self, now: float) -> None:
        pending = self.pending()
        if pending:
            needed = self._nodes_needed(pending, now)
            room = self.group.max_size - len(self.nodes)
            if min(needed, room) > 0:
                self.add_nodes(now, min(needed, room))
                self.last_scale_up = now
            return
        self._scale_down(now)

    def _nodes_needed(self, pending: list[Pod], now: float) -> int:
        # Pods that will fit on nodes still booting need no new node.
        booting = [Node(n.created_at, n.ready_at, n.cpu_m, n.memory_mib, list(n.pods))
                   for n in self.nodes if n.ready_at > now]  # fmt: skip
        cpu_m, memory = allocatable(self.group.instance)
        added: list[Node] = []
        for pod in sorted(pending, key=lambda p: -p.cpu_m):
            node = next((n for n in (*booting, *added) if n.fits(pod)), None)
            if node is None:
                if pod.cpu_m > cpu_m or pod.memory_mib > memory:
                    continue  # fits on no node of this type: Cluster Autoscaler skips it
                node = Node(now, now, cpu_m, memory)
                added.append(node)
            node.pods.append(Pod(pod.tier, pod.cpu_m, pod.memory_mib, now))
        return len(added)

    def _scale_down(self, now: float) -> None:
        ready = [n for n in self.nodes if n.ready_at <= now]
        removable = len(self.nodes) - self.group.min_size
        for node in ready:
            if node.utilization() < UTILIZATION_THRESHOLD and self._fits_elsewhere(node, ready):
                node.unneeded_since = (
                    node.unneeded_since if node.unneeded_since is not None else now
                )
            else:
                node.unneeded_since = None
        if now - self.last_scale_up < DELAY_AFTER_ADD_S or removable <= 0:
            return
        due = [
            n
            for n in ready
            if n.unneeded_since is not None and now - n.unneeded_since >= UNNEEDED_S
        ]
        empty = [n for n in due if not n.pods][:removable]
        for node in empty:
            self.nodes.remove(node)
        busy = [n for n in due if n.pods]
        if not empty and busy:
            self._drain(busy[-1], now)

    def _fits_elsewhere(self, node: Node, ready: list[Node]) -> bool:
        others = [Node(n.created_at, n.ready_at, n.cpu_m, n.memory_mib, list(n.pods))
                  for n in ready if n is not node]  # fmt: skip
        for pod in node.pods:
            target = next((n for n in others if n.fits(pod)), None)
            if target is None:
                return False
            target.pods.append(pod)
        return True

    def _drain(self, node: Node, now: float) -> None:
        self.nodes.remove(node)
        for pod in node.pods:
            pod.node, pod.ready_at = None, None  # evicted: recreated, Pending, started again
        node.pods.clear()
        self.schedule(now)

    def place_system_pods(self) -> None:
        """CoreDNS, metrics-server and the controllers, on the first node."""
        self.pods.append(Pod("system", SYSTEM_REQUESTS[0], SYSTEM_REQUESTS[1], 0.0))
