"""Karpenter as the node autoscaler: NodePools read from the render, provisioning, consolidation.

The managed node group is the system group (its desired size, never resized; the system pods
run there). The service's pods run on nodes of the NodePools they may use (`Setup.placement`,
from the Deployments' nodeSelector and tolerations against each pool's labels and taints).

- Provisioning: every `BATCH_S` (Karpenter batches Pending pods for 1 to 10 s) the Pending pods
  that no booting node will take are packed, largest CPU request first, onto new nodes of the
  heaviest pool each may use (first fit over the batch's new nodes, each as large as the
  pool's largest allowed type); each new node then gets the cheapest allowed type that holds
  its pods (on-demand prices; Spot is cheaper but not modelled). A node that would take the
  pool past its cpu or memory limit is not launched. Nodes are Ready after `node_start_s`
  (about a minute: EC2 launch and join, no node group in between).
- Consolidation (`WhenEmptyOrUnderutilized`): every `BATCH_S`, a Karpenter node that is empty,
  or whose pods all fit on the other ready nodes they may use, for `consolidate_after_s` is
  removed, one node at a time (the pools' disruption budget of 1): its pods are evicted (one at
  a time through the PDBs, here at once), go Pending and start again elsewhere. Replacing a node
  by a cheaper type is not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from infra.prices import InstanceType

from .cluster import Cluster, Node, Pod, allocatable

BATCH_S = 10
NODE_START_S = 60.0  # a NodeClaim to a Ready node: EC2 launch, AL2023 boot, join


@dataclass(frozen=True)
class NodePool:
    """One Karpenter NodePool, as the simulator uses it."""

    name: str
    types: tuple[InstanceType, ...]
    prices: Mapping[str, float]  # instance type -> USD per hour, on demand
    weight: int
    cpu_limit: float  # vCPUs
    memory_limit_mib: float
    consolidate_after_s: float

    def cheapest_fit(self, cpu_m: int, memory_mib: float) -> InstanceType | None:
        fitting = [
            t for t in self.types if allocatable(t)[0] >= cpu_m and allocatable(t)[1] >= memory_mib
        ]
        return min(fitting, key=lambda t: (self.prices[t.name], t.vcpu)) if fitting else None

    @property
    def largest(self) -> InstanceType:
        return max(self.types, key=lambda t: (t.vcpu, t.memory_mib))


@dataclass
class KarpenterCluster(Cluster):
    """The system group plus the nodes Karpenter launches and consolidates."""

    pools: tuple[NodePool, ...] = ()
    placement: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # tier -> pools
    group_pool = "system"

    def admits(self, node: Node, pod: Pod) -> bool:
        if pod.tier == "system":
            return node.pool == "system"
        return node.pool in self.placement.get(pod.tier, ())

    def step(self, now: float, dt: float) -> None:
        self.schedule(now)
        if now % BATCH_S < dt:
            self.provision(now)
            self._consolidate(now)

    def provision(self, now: float, ready_at: float | None = None) -> list[Node]:
        """Launch nodes for the Pending pods (Ready at `ready_at`, default after the start)."""
        booting = [Node(n.created_at, n.ready_at, n.cpu_m, n.memory_mib, list(n.pods),
                        pool=n.pool) for n in self.nodes if n.ready_at > now]  # fmt: skip
        claims: list[tuple[NodePool, Node]] = []
        for pod in sorted(self.pending(), key=lambda p: -p.cpu_m):
            if any(n.fits(pod) and self.admits(n, pod) for n in booting):
                next(n for n in booting if n.fits(pod) and self.admits(n, pod)).pods.append(pod)
                continue
            claim = next((c for pool, c in claims
                          if pool.name in self.placement.get(pod.tier, ()) and c.fits(pod)),
                         None)  # fmt: skip
            if claim is None:
                pool = self._pool_for(pod, claims)
                if pool is None:
                    continue  # no pool may take it, or every pool is at its limits
                cpu_m, memory = allocatable(pool.largest)
                claim = Node(now, now, cpu_m, memory, pool=pool.name)
                claims.append((pool, claim))
            claim.pods.append(pod)
        launched = []
        for pool, claim in claims:
            used_m = sum(p.cpu_m for p in claim.pods)
            used_mib = sum(p.memory_mib for p in claim.pods)
            instance = pool.cheapest_fit(used_m, used_mib) or pool.largest
            cpu_m, memory = allocatable(instance)
            ready = now + self.node_start_s if ready_at is None else ready_at
            node = Node(now, ready, cpu_m, memory, pool=pool.name, instance=instance.name,
                        price_per_hour=pool.prices[instance.name])  # fmt: skip
            self.nodes.append(node)
            launched.append(node)
        return launched

    def _pool_for(self, pod: Pod, claims: list[tuple[NodePool, Node]]) -> NodePool | None:
        allowed = [p for p in self.pools if p.name in self.placement.get(pod.tier, ())]
        for pool in sorted(allowed, key=lambda p: -p.weight):
            vcpu, memory = self._in_use(pool, claims)
            largest = pool.largest
            if (vcpu + largest.vcpu <= pool.cpu_limit
                    and memory + largest.memory_mib <= pool.memory_limit_mib):  # fmt: skip
                return pool
        return None

    def _in_use(self, pool: NodePool, claims: list[tuple[NodePool, Node]]) -> tuple[int, int]:
        types = {t.name: t for t in pool.types}
        nodes = [types[n.instance] for n in self.nodes if n.pool == pool.name]
        nodes += [pool.largest for p, _ in claims if p is pool]
        return sum(t.vcpu for t in nodes), sum(t.memory_mib for t in nodes)

    def _consolidate(self, now: float) -> None:
        pools = {p.name: p for p in self.pools}
        ready = [n for n in self.nodes if n.ready_at <= now]
        due = []
        for node in ready:
            if node.pool not in pools:
                continue
            others = [n for n in ready if n is not node]
            if not node.pods or self._fits_on(node, others):
                node.unneeded_since = (
                    node.unneeded_since if node.unneeded_since is not None else now
                )
                if now - node.unneeded_since >= pools[node.pool].consolidate_after_s:
                    due.append(node)
            else:
                node.unneeded_since = None
        if due:  # disruption budget: one node at a time; empty nodes first
            self._drain(min(due, key=lambda n: (len(n.pods), -n.price_per_hour)), now)

    def _fits_on(self, node: Node, others: list[Node]) -> bool:
        copies = [Node(n.created_at, n.ready_at, n.cpu_m, n.memory_mib, list(n.pods),
                       pool=n.pool) for n in others]  # fmt: skip
        for pod in node.pods:
            target = next((n for n in copies if n.fits(pod) and self.admits(n, pod)), None)
            if target is None:
                return False
            target.pods.append(pod)
        return True
