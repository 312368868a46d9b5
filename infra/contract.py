"""The platform side of the service contract: port, probe paths and drain timing.

The load balancer here and the Kubernetes workload read these, so the target group's health
check and deregistration delay cannot drift from what the pods actually do.
"""

SERVICE_PORT = 8000
HEALTH_PATH = "/health"  # liveness: no dependencies
READY_PATH = "/ready"  # readiness: PostgreSQL, Redis, draining, capacity

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
METRICS_PATH = "/metrics"
# Prometheus metrics are served on a port of their own (METRICS_PORT), named `metrics` on the
# API and worker containers: the ALB and the Service reach only SERVICE_PORT.
METRICS_PORT = 9090
# The container's fixed numeric user and group (service/Dockerfile: USER 10001:10001).
RUN_AS_USER = 10001
