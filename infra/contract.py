"""The platform side of the service contract.

The service owns its contract: `service/contract.json` (generated from its settings class by
`python -m agent_service.contract`) says which environment variables it accepts and which are
secret, what each process requires, its port, probe paths, commands and user. The platform
reads that file here instead of restating it, so the load balancer's health check, the pods'
probes and commands and the ConfigMap cannot drift from what the image does
(tests/contract/ checks every rendered stack against it).

The drain timeline below is the platform's own: it spans the ALB, the kubelet and the process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACT_FILE = Path(__file__).resolve().parents[1] / "service" / "contract.json"


def load(path: Path = CONTRACT_FILE) -> dict[str, Any]:
    """The service's contract as the service wrote it."""
    return json.loads(path.read_text())


_CONTRACT = load()

SERVICE_PORT: int = _CONTRACT["port"]
HEALTH_PATH: str = _CONTRACT["probes"]["liveness_path"]  # liveness: no dependencies
READY_PATH: str = _CONTRACT["probes"]["readiness_path"]  # readiness: stores, draining, capacity
METRICS_PATH: str = _CONTRACT["probes"]["metrics_path"]
# Prometheus metrics are served on a port of their own, named `metrics` on the API and worker
# containers: the ALB and the Service reach only SERVICE_PORT.
METRICS_PORT: int = _CONTRACT["metrics_port"]
RUN_AS_USER: int = _CONTRACT["run_as_user"]  # the image's numeric user (service/Dockerfile)
RUN_AS_GROUP: int = _CONTRACT["run_as_group"]
COMMANDS: dict[str, list[str]] = _CONTRACT["commands"]  # api, worker, migrate and the probes
SECRET_VARIABLES: frozenset[str] = frozenset(_CONTRACT["environment"]["secret"])

# Shutdown timeline of a pod: the preStop sleep keeps it serving while the ALB stops routing
# new requests to it; then SIGTERM lets the app finish in-flight work. The ALB keeps draining
# connections for DEREGISTRATION_DELAY, which must outlast the preStop sleep (or requests still
# arriving in that window are cut) and end before the kubelet kills the pod.
PRESTOP_SLEEP_SECONDS = 15
DEREGISTRATION_DELAY_SECONDS = 30
TERMINATION_GRACE_PERIOD_SECONDS = 45

# After SIGTERM the API answers /ready with 503 for SHUTDOWN_DRAIN_SECONDS while still serving,
# then stops accepting and gives requests in flight up to SHUTDOWN_TIMEOUT_SECONDS. The worker
# uses the timeout as its grace for running tasks. preStop + drain + timeout must end before the
# kubelet's SIGKILL at TERMINATION_GRACE_PERIOD_SECONDS.
SHUTDOWN_DRAIN_SECONDS = 5
SHUTDOWN_TIMEOUT_SECONDS = 20
