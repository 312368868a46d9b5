"""Operations of a stack: where telemetry lands (`Sinks`, created first) and what produces,
watches and ships it (`Monitoring`, created last).

- sinks.py: the telemetry KMS key, the ALB and WAF log buckets (buckets.py), the container log
  group, RDS enhanced monitoring's role.
- monitoring.py: Prometheus on AMP (prometheus.py, scrape.py), the alert topic (alerting.py),
  CloudWatch alarms (alarms.py) and dashboard (dashboard.py), log shipping (logging.py).

The rule files, the alert manager definition and the Grafana dashboard live in observability/.
"""

from infra.components.observability.alarms import AlarmTargets
from infra.components.observability.monitoring import Monitoring, MonitoringArgs
from infra.components.observability.prometheus import ScraperNetwork
from infra.components.observability.sinks import Sinks, SinksArgs

__all__ = ["AlarmTargets", "Monitoring", "MonitoringArgs", "ScraperNetwork", "Sinks", "SinksArgs"]
